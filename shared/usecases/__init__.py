"""Use cases: each orchestrates the domain through the ports (Protocols) it declares, one per capability."""
