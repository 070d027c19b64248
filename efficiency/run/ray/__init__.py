"""The Ray executor and cluster helpers (Ray is imported only when used)."""
