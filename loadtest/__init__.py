"""`make loadtest` (`python -m loadtest`): the bot's real flows under load with Locust, against one
Rasa and against several behind HAProxy, every event it caused checked against PostgreSQL."""
