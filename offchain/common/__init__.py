"""What the two products truly share: the error root and the hash."""
