from alm_bench.cli import app

app()
