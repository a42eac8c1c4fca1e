"""The demo behind `make demo`: simulated traffic, Prometheus, the controller and two releases.

A driver of the product, like `sandbox` (which it runs on) and the tests, so it lives beside them and
outside the controller's wheel and image, which carry `delivery` and `strategies` only."""
