"""The lab: the machinery that runs and checks the modules of code/<model>/, apart from what a
reader copies. Three floors, each importing only those below it (tests/test_layers.py keeps this):

1. What everyone needs: envs.py (which environment runs a row, and running a lab module there),
   runs.py (run folders), digest.py (which code measured a result), results.py (result documents).
2. The work: harness.py (one row's training, inside its environment, with introspect.py and
   own_init.py), runner.py and plan.py (a run of rows), modes.py (the runs the command line
   makes), parity.py, onnx_check.py, launch.py and scale_out.py (the checks and their workers),
   features.py (part III's rows, which train nothing: their timed run and their check),
   breakdown.py (where a step's time goes), attention_defaults.py (part IV's defaults, read in each
   framework, and what keeping one costs).
3. On top, outside this package: code/bench.py (the command line) and code/pages/ (the book's
   measured pages).

What runs inside a framework's environment (harness, introspect, own_init, results, and the workers
of parity, onnx_check, scale_out, features and attention_defaults) stays importable on Python 3.6.
"""
