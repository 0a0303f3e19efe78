"""Infrastructure: the wiring (one source of truth), the CDK app and the local stack."""
