"""The demo behind `make demo`: simulated traffic, Prometheus, the controller and two releases."""
