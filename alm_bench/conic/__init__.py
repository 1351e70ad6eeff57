"""Everything only conic runs (SDPs, Max-Cut, LPs over a compact set) touch.

    problems.py  ConicSDP, MaxCut, SDPAProblem     lp.py  BoxLP          readers/  graph and SDPA files
    operators.py one CSR operator (C, each slack)   eigen.py  the eigen-oracle and the certificate
    kernels.py   numpy/scipy on the CPU, torch elsewhere                  rounding.py  Goemans-Williamson
    iterate.py   what a solver yields per iteration  measure.py  the harness that measures every solver alike
    solvers/     one module per solver, its config class beside its loop
"""
