from homewatch.cli import app

app(prog_name="homewatch")
