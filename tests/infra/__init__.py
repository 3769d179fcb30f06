"""Real servers the tests start on loopback: a throwaway PostgreSQL cluster, an S3 API (moto)."""
