"""Protocol clients: RESP, redis-py, pika, the RabbitMQ HTTP API; one TLS set-up, one Redis error classifier."""
