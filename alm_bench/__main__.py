from alm_bench.cli import app

app(prog_name="alm-bench")
