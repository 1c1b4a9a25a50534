"""The test suite: a package, so that `tests.helpers` and `tests.harness` are imported one way everywhere."""
