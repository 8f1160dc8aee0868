"""Rasa input channels for REST and socket.io (Telegram's is bot/telegram/channel.py), and what
every channel shares: conversation ids that say which channel they belong to, user text cleaned
before Rasa sees it, one queue for the messages a process works on at once, an apology instead of
silence when a custom action cannot run, Rasa's check of the action server's answers without its
cost, the loaded model kept out of the garbage collector's walks, and its prediction graph run
without dask and without the policies a rule overrules."""

from bot.channels import action_failures, action_results, frozen_model, graph_runner

action_failures.install()
action_results.install()
frozen_model.install()
graph_runner.install()
