"""Channel adapters. Each imports only `channels.base`, the standard library and its own library."""
