"""Everything specific to RabbitMQ (AMQP 0-9-1): adapter, peek, confirms, operations."""
