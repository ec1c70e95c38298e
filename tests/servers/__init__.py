"""Real servers the test session starts on loopback (PostgreSQL, the app under uvicorn, …)."""
