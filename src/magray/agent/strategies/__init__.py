"""Planning strategies: one class per file, all speaking ``base.Strategy``.

``NativeTools`` (providers with function calling), ``JsonProtocol`` (chat models without
it) and ``WorkedExamples`` (base models). ``magray.agent.planner.Planner`` picks one from
the provider's declared ``Capabilities``.
"""
