"""`hub load`: a source's initial extract matched and written in bulk (see load.py)."""
