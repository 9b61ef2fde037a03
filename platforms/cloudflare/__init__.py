"""Cloudflare Python Workers: ``entry.Default`` and the fetch-based transport it uses."""
