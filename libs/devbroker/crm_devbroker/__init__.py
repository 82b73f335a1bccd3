"""The development broker: what `make run` and the tests use instead of a Kafka cluster, and nothing else.

`crm_devbroker.broker` starts Tansu (`crm-broker`), `crm_devbroker.testing` is the pytest plugin (pytest.ini loads
it). Production code (crm_common and the services' packages) never imports this package and the production image
does not install it (tests/deploy/test_dev_broker_isolation.py).
"""
