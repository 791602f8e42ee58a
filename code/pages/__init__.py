"""The book's measured pages, one module per page (results.py, fast.py, defaults.py, weights.py,
export.py, scale.py) and what they share (base.py). The chapters' notebook cells call their
`show_*` functions; they read the lab (code/lab/) and never the command line.
"""
