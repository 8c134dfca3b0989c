"""Pure-Python numerics of aiida-matembed. Nothing in this subpackage may import ``aiida``."""
