pytest_plugins = ["tests.fixtures.mqtt", "tests.fixtures.postgres"]
