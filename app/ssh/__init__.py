"""SSH access to pods: key generation and the bootstrap client (upload, detached start, progress)."""
