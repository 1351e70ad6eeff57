"""bench.sdp's bookkeeping: SCS's ladder of eps turns into time brackets, and a solver process the OS kills
(SCS out of memory on a large graph) is reported in its row instead of ending the benchmark."""

import os

import pytest

from bench.sdp import SCS_LADDER, FreshProcesses, best_of, cell, iterations, measure_both, measure_scs


class CannedSCS:
    """Stands in for FreshProcesses: each call at eps returns what SCS's stop at eps showed, or None (killed)."""

    def __init__(self, stops: dict):
        self.stops, self.asked = stops, []

    def call(self, fn, graph, name, time_cap, scs_cap, tol, eps):
        self.asked.append(eps)
        stop = self.stops[eps]
        return None if stop is None else {"reached": False, "took": stop[0], "iterations": stop[1],
                                          "bound": 1.0, "last": stop[2], "rss_mb": 100.0}


@pytest.mark.slow
def test_a_killed_process_gives_none_and_the_next_call_gets_a_fresh_one():
    procs = FreshProcesses()
    try:
        assert procs.call(os._exit, 9) is None
        assert procs.call(abs, -3) == 3
    finally:
        procs.close()


def test_scs_misses_then_meets_a_tolerance_and_the_times_bracket_it():
    # iterates at 100 s (eps 5e-4): 8e-4; at 250 s (1e-4): 3e-4; at 500 s: 5e-6; at 890 s (cap 900): 2e-6
    canned = CannedSCS({5e-4: (100.0, 1000, 8e-4), 1e-4: (250.0, 2500, 3e-4), 2e-5: (500.0, 5000, 5e-6),
                        1e-6: (890.0, 9000, 2e-6)})
    m = measure_scs(canned, "G1", 900.0)
    assert canned.asked == list(SCS_LADDER)
    assert (m["t4"], m["m4"], m["u4"], m["i4"]) == (None, 100.0, 250.0, 2500)
    assert cell(m["t4"], m["m4"], m["u4"], m["k4"]) == "100–250"
    assert cell(m["t6"], m["m6"], m["u6"], m["k6"]) == "> 890"
    assert m["last"] == 2e-6 and not m["k4"]


def test_scs_meeting_the_tolerance_at_its_own_eps_is_an_exact_time_and_the_cap_ends_the_ladder():
    canned = CannedSCS({5e-4: (40.0, 400, 4e-4), 1e-4: (899.0, 9000, 2e-4)})
    m = measure_scs(canned, "G1", 900.0)
    assert canned.asked == [5e-4, 1e-4]          # 899 s is within 2% of the cap: no tighter call
    assert (m["t4"], m["i4"], m["m4"], m["u4"]) == (40.0, 400, None, None)
    assert cell(m["t6"], m["m6"], m["u6"], m["k6"]) == "> 899"


def test_a_killed_scs_call_ends_its_ladder_and_shows_in_the_row():
    canned = CannedSCS({5e-4: (300.0, 3000, 9e-4), 1e-4: None})
    m = measure_scs(canned, "G60", 900.0)
    assert canned.asked == [5e-4, 1e-4]
    assert cell(m["t4"], m["m4"], m["u4"], m["k4"]) == "> 300, then killed"
    assert m["last"] == 9e-4 and m["rss_mb"] == 100.0   # from the last call that came back
    first_killed = measure_scs(CannedSCS({5e-4: None}), "G60", 900.0)
    assert cell(first_killed["t4"], first_killed["m4"], first_killed["u4"], first_killed["k4"]) == "killed (out of memory?)"


def test_a_solver_killed_on_its_run_to_1e6_keeps_its_time_to_5e4():
    class KilledAtFine:
        def call(self, fn, graph, name, time_cap, scs_cap, tol):
            return None if tol == 1e-6 else {"reached": True, "took": 1.5, "iterations": 3, "bound": 1.0,
                                             "last": 4e-4, "rss_mb": 50.0}

    m = measure_both(KilledAtFine(), "G60", "bala", 300.0, 900.0)
    assert cell(m["t4"], m["m4"], m["u4"], m["k4"]) == "1.50" and m["i4"] == 3
    assert cell(m["t6"], m["m6"], m["u6"], m["k6"]) == "killed (out of memory?)"
    assert m["rss_mb"] == 50.0


def test_bala_primal_phase_is_shown_apart_in_its_cells():
    class WithPhase:
        def call(self, fn, graph, name, time_cap, scs_cap, tol):
            return {"reached": True, "took": 0.28 if tol == 1e-6 else 0.2, "iterations": 9, "bound": 1.0,
                    "last": 9e-7, "rss_mb": 50.0, "phase_s": 0.02, "phase_sweeps": 50 if tol == 1e-6 else 3}

    m = measure_both(WithPhase(), "G1", "bala", 60.0, 120.0)
    assert cell(m["t6"], m["m6"], m["u6"], m["k6"], m["p6"]) == "0.28 (0.02)"
    assert iterations(m["i6"], m["s6"]) == "50 sw + 9" and iterations(m["i4"], m["s4"]) == "3 sw + 9"
    assert iterations(12, None) == "12" and iterations(None, 50) == "–"
    assert best_of([m, dict(m, t6=0.5, p6=0.3)])["p6"] == 0.02
