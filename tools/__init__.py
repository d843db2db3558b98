"""Commands an organiser runs against the deployed stack or `make local`."""
