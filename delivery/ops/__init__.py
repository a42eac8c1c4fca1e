"""Running the controller as a service: leader election, metrics and health, logs, notifications."""
