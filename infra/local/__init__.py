"""The local stack: embedded moto, the same handlers and the same wiring as the cloud."""
