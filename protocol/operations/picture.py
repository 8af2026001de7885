"""A picture of one game (`game_svg`): the bisection path drawn as SVG, written by hand (no drawing library).

Phase 1 descends the solver's trace tree, whose leaves are the model's operators in execution order: each reveal
shows the node under dispute split into its revealed children, each pick the child the challenger disputes, until
`selectOperator` names the disputed operator. Phase 2 descends the disputed operator's output tensor (leaves: 32-byte
words of it) the same way to the one-step. A node at height ``h`` and index ``i`` covers leaves
``[i * 2**h, (i + 1) * 2**h)``: every move is drawn as that interval on a bar of all the phase's leaves (at least a
few pixels wide, so the last levels stay visible) with, on its right, who moved, what, the block, the seconds since
the challenge and the gas used.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

WIDTH, ROW, BAR_X, BAR_W, TEXT_X = 1100, 22, 20, 420, 460
SOLVER, CHALLENGER, OTHER = "#2f6fb0", "#d2691e", "#666666"


def _colour(who: str) -> str:
    return {"solver": SOLVER, "challenger": CHALLENGER}.get(who, OTHER)


def _text(x: float, y: float, s: str, size: int = 12, weight: str = "normal", fill: str = "#222") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-family="monospace" font-size="{size}" font-weight="{weight}" '
            f'fill="{fill}">{escape(s)}</text>')


def _span(lo: int, hi: int, total: int) -> tuple[float, float]:
    """Pixel x and width of leaves [lo, hi) on a bar of ``total`` leaves (at least 3 px wide)."""
    x = BAR_X + BAR_W * lo / total
    w = max(3.0, BAR_W * (hi - lo) / total)
    return min(x, BAR_X + BAR_W - w), w


def _moves_by_phase(moves: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """(phase-1 moves, phase-2 moves, the others: challenge, resolution), in chain order."""
    p1, p2, rest = [], [], []
    in_phase2 = False
    for m in moves:
        if m["event"] == "OperatorSelected":
            p1.append(m)
            in_phase2 = True
        elif m["event"] in ("Revealed", "Picked"):
            phase = int(m.get("phase", 1))
            (p2 if phase == 2 else p1 if phase == 1 else rest).append(m)  # phase 3 (6): drawn after phase 2
            in_phase2 = in_phase2 or int(m.get("phase", 1)) == 2
        else:
            rest.append(m)
    return p1, p2, rest


def _leaf_height(moves: list[dict], start: int | None) -> int | None:
    """The tree height of a phase: the height of its first reveal, else ``start`` (phase 2: the tensor depth)."""
    for m in moves:
        if m["event"] == "Revealed":
            return int(m["height"])
    return start


def _phase_rows(moves: list[dict], height: int | None, y: float, t0: int, times: dict[int, int],
                label: str) -> tuple[list[str], float]:
    """SVG elements of one phase from y on; returns (elements, next y)."""
    out = [_text(BAR_X, y, label, 13, "bold")]
    y += 8
    total = 1 << (height or 0)
    if height is None:
        return out + [_text(BAR_X, y + 14, "(not reached)", fill=OTHER)], y + 26
    for m in moves:
        y += ROW
        colour = _colour(m["who"])
        out.append(f'<rect x="{BAR_X}" y="{y - 12}" width="{BAR_W}" height="12" fill="#eeeeee" stroke="#bbbbbb"/>')
        if m["event"] == "Revealed":
            h, i = int(m["height"]), int(m["nodeIndex"])
            n = len(m.get("children", [])) or 1
            lo, hi = i << h, (i + 1) << h
            x, w = _span(lo, hi, total)
            out.append(f'<rect class="move" x="{x:.1f}" y="{y - 12}" width="{w:.1f}" height="12" fill="{colour}" '
                       f'fill-opacity="0.35" stroke="{colour}"/>')
            for c in range(1, n):  # the revealed children, as ticks inside the node
                cx = x + w * c / n
                out.append(f'<line x1="{cx:.1f}" y1="{y - 12}" x2="{cx:.1f}" y2="{y}" stroke="{colour}" '
                           'stroke-width="0.5"/>')
            what = f"reveal {n} children of node {i} at height {h} (leaves {lo}..{hi - 1})"
        elif m["event"] == "Picked":
            h, i = int(m["height"]), int(m["nodeIndex"])
            lo, hi = i << h, (i + 1) << h
            x, w = _span(lo, hi, total)
            out.append(f'<rect class="move" x="{x:.1f}" y="{y - 12}" width="{w:.1f}" height="12" '
                       f'fill="{colour}"/>')
            what = f"pick node {i} at height {h} (leaves {lo}..{hi - 1})"
        else:  # OperatorSelected: the disputed leaf of phase 1
            j = int(m["opIndex"])
            x, w = _span(j, j + 1, total)
            out.append(f'<rect class="move" x="{x:.1f}" y="{y - 14}" width="{w:.1f}" height="16" fill="#c0392b"/>')
            what = f"select operator {j} (its output: {1 << int(m['tensorDepth'])} words)"
        dt = times.get(m["block"], t0) - t0
        out.append(_text(TEXT_X, y - 1, f"{m['who']:<10} {what}", fill=colour))
        out.append(_text(TEXT_X + 470, y - 1, f"block {m['block']}  +{dt}s  gas {m['gas']}", fill="#444"))
    return out, y + 26


def game_svg(view: dict, times: dict[int, int]) -> str:
    """The SVG picture (a string) of game ``view`` (`protocol.operations.inspect.game_view`), ``times`` the
    timestamp (seconds) of each block its moves are in. Every move is one ``<rect class="move">`` with its text."""
    moves = view["moves"]
    p1, p2, rest = _moves_by_phase(moves)
    start = next((m for m in moves if m["event"] == "Challenged"), moves[0] if moves else None)
    t0 = times.get(start["block"], 0) if start else 0
    sel = next((m for m in p1 if m["event"] == "OperatorSelected"), None)
    body = [_text(BAR_X, 24, f"game {view['game_id']} on task {view['task_id']}: winner "
                  f"{view['winner'] or '-'}, phase {view['phase']}, bond {view['bond']} wei, total gas "
                  f"{view['gas_total']}", 14, "bold"),
            _text(BAR_X, 42, f"solver {view['solver']}", fill=SOLVER),
            _text(BAR_X + 520, 42, f"challenger {view['challenger']}", fill=CHALLENGER)]
    y = 66.0
    for m in rest:
        if m["event"] == "Challenged":
            body.append(_text(BAR_X, y, f"challenged at block {m['block']} (gas {m['gas']}, tx {m['tx'][:18]}..)",
                              fill=CHALLENGER))
            y += 22
    rows, y = _phase_rows(p1, _leaf_height(p1, None), y + 8, t0, times,
                          "phase 1: the trace, one leaf per operator in execution order")
    body += rows
    depth = int(sel["tensorDepth"]) if sel else None
    rows, y = _phase_rows(p2, _leaf_height(p2, depth) if sel else None, y, t0, times,
                          f"phase 2: the output of operator {sel['opIndex']}, one leaf per 32-byte word" if sel
                          else "phase 2: the disputed tensor")
    body += rows
    p3 = [m for m in rest if m["event"] in ("Revealed", "Picked")]
    if p3:
        rows, y = _phase_rows(p3, _leaf_height(p3, None), y, t0, times,
                              "phase 3: the disputed element's partial sums, one leaf per chunk of its reduction")
        body += rows
    for m in rest:
        if m["event"] == "GameResolved":
            dt = times.get(m["block"], t0) - t0
            body.append(_text(BAR_X, y, f"resolved at block {m['block']} (+{dt}s, gas {m['gas']}): challenger "
                              f"{'won' if m.get('challengerWon') else 'lost'}, {m.get('reason', '')}", 13, "bold"))
            y += 22
    height = int(y + 10)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(body) + "\n</svg>\n")
