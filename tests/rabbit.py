"""What the tests ask RabbitMQ directly, apart from Abaco's own channels."""
from __future__ import annotations

import os

import pika
import pika.exceptions as pex


def queue_exists(name: str) -> bool:
    """Whether queue ``name`` exists (a passive declare; an exclusive queue of another connection
    counts). Uses ``ABACO_TEST_RABBIT_URI``, default the local broker."""
    connection = pika.BlockingConnection(pika.URLParameters(os.environ.get("ABACO_TEST_RABBIT_URI",
                                                                           "amqp://127.0.0.1:5672")))
    try:
        channel = connection.channel()
        try:
            channel.queue_declare(name, passive=True)
            return True
        except pex.ChannelClosedByBroker as exc:
            return exc.reply_code == 405
    finally:
        if connection.is_open:
            connection.close()
