"""The only code that talks to AWS. Each adapter implements a port the domain declares."""
