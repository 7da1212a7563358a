"""Pure statistics: numpy and scipy only, no I/O."""
