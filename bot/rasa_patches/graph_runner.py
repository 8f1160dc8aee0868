"""Rasa's prediction graph run node after node in the calling thread, without dask, and without the
policies that a matching rule overrules.

Rasa runs its model's graph (NLU components, policies, the ensemble that picks one prediction)
through dask for every parse and every action it predicts, several times per message. Two costs
come from that, measured on the load test's conversations (shares of a Rasa process's CPU time):

- On one thread dask only adds work: building a task graph, ordering it and passing futures took
  5.8 %. Here each node runs once, after the nodes it needs, with their outputs, and the targets'
  outputs are returned by node name, as DaskGraphRunner returns them.
- Every policy predicts every action, although the ensemble then takes the matching rule in 92 % of
  the predictions: TEDPolicy's 28 % and MemoizationPolicy's 5 % were mostly thrown away. Here a rule
  that decides with certainty (confidence 1) spares the policies it overrules: those of lower
  priority that never make end-to-end or no-user predictions (which outrank a rule). The ensemble
  gets an empty prediction from each of them and picks the rule's, as it would have.

Training, `rasa test` and `rasa shell` keep Rasa's dask runner.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Text, Tuple

import rasa.core.processor
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.memoization import MemoizationPolicy
from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import GraphSchema, SchemaNode
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.events import ActionExecuted, ActionExecutionRejected
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import TEXT

Output = Tuple[Text, Any]  # what a node passes on: its name and its result


class SequentialGraphRunner(DaskGraphRunner):
    """DaskGraphRunner's `run`, each needed node called once in dependency order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._minimal_schemas: Dict[Tuple[Text, ...], GraphSchema] = {}

    def run(self, inputs: Optional[Dict[Text, Any]] = None, targets: Optional[List[Text]] = None) -> Dict[Text, Any]:
        """The outputs of `targets` (the schema's targets by default), by node name."""
        run_targets = targets if targets else self._graph_schema.target_names
        schema = self._minimal_schema(tuple(run_targets))
        outputs: Dict[Text, Output] = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, str) and value in schema.nodes:
                raise GraphRunError(
                    f"Input value '{value}' clashes with a node name. Make sure that none of the input "
                    f"names passed to the `run` method are the same as node names in the graph schema."
                )
            outputs[name] = (name, value)

        def output_of(name: Text) -> Output:
            if name not in outputs:
                node = schema.nodes[name]
                if issubclass(node.uses, DefaultPolicyPredictionEnsemble):
                    parents = self._ensemble_inputs(schema, node, output_of)
                else:
                    parents = [output_of(parent) for parent in node.needs.values()]
                outputs[name] = self._instantiated_nodes[name](*parents)
            return outputs[name]

        try:
            return dict(output_of(target) for target in run_targets)
        except RuntimeError as error:  # the one error DaskGraphRunner wraps; others pass as they are
            raise GraphRunError("Error running runner.") from error

    def _ensemble_inputs(
        self, schema: GraphSchema, ensemble: SchemaNode, output_of: Callable[[Text], Output]
    ) -> List[Output]:
        """The ensemble's inputs, the rules' predictions first: the policies that a certain rule
        overrules are not run, and pass an empty prediction instead."""
        rules = [parent for parent in ensemble.needs.values() if _uses(schema, parent, RulePolicy)]
        certain = [output_of(rule)[1] for rule in rules]
        certain = [prediction for prediction in certain if prediction.max_confidence >= 1.0]
        tracker = output_of(ensemble.needs["tracker"])[1]
        if not certain or _rejected_last_action(tracker):  # a rejected action's confidence drops to 0
            return [output_of(parent) for parent in ensemble.needs.values()]
        rule = max(certain, key=lambda prediction: prediction.policy_priority)
        inputs = []
        for parent in ensemble.needs.values():
            policy = self._overruled_policy(schema, parent, rule)
            if policy is None:
                inputs.append(output_of(parent))
            else:
                empty = [0.0] * len(rule.probabilities)
                inputs.append((parent, PolicyPrediction(empty, type(policy).__name__, policy.priority)))
        return inputs

    def _overruled_policy(self, schema: GraphSchema, name: Text, rule: PolicyPrediction) -> Optional[Policy]:
        """The policy of node `name` if the rule's certain prediction wins over any of its own, None if
        it must run: it wins over a policy of lower priority whose predictions are never end-to-end
        (TEDPolicy's are only with user texts among its features) nor no-user ones (MemoizationPolicy's
        and TEDPolicy's; RulePolicy, a MemoizationPolicy, makes them)."""
        if _uses(schema, name, RulePolicy) or not (
            _uses(schema, name, MemoizationPolicy) or _uses(schema, name, TEDPolicy)
        ):
            return None
        policy = self._instantiated_nodes[name]._component
        if isinstance(policy, TEDPolicy) and TEXT in policy.fake_features:
            return None
        return policy if policy.priority < rule.policy_priority else None

    def _minimal_schema(self, targets: Tuple[Text, ...]) -> GraphSchema:
        """The part of the schema the targets need, computed once per set of targets."""
        if targets not in self._minimal_schemas:
            self._minimal_schemas[targets] = self._graph_schema.minimal_graph_schema(list(targets))
        return self._minimal_schemas[targets]


def _uses(schema: GraphSchema, name: Text, component: type) -> bool:
    return name in schema.nodes and issubclass(schema.nodes[name].uses, component)


def _rejected_last_action(tracker: DialogueStateTracker) -> bool:
    """Whether the ensemble will zero a rejected action in every prediction, the rule's included."""
    for event in reversed(tracker.events):
        if isinstance(event, (ActionExecuted, ActionExecutionRejected)):
            return isinstance(event, ActionExecutionRejected)
    return False


def install() -> None:
    """Make Rasa load each model's prediction graph with this runner (once per process)."""
    rasa.core.processor.DaskGraphRunner = SequentialGraphRunner
