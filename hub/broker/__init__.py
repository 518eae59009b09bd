"""RabbitMQ: topology declared in code, and a publisher with confirms."""
