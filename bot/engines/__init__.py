"""The real servers the multi-replica stack runs on, from Debian's packages (scripts/system-deps.sh):
PostgreSQL for the conversation log and the shop, Redis for Rasa's lock store, HAProxy in front of
the Rasa replicas. Each binds to loopback and wants a password or key."""
