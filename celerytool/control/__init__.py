"""The live system: workers, inspect, revoke, events, top, through Celery's own machinery.

A bare ``Celery(broker=URL)`` app talks to the workers (``app.control``,
``celery.events.EventReceiver``); this package adds what Celery lacks: it
knows whom to expect (so a call stops as soon as they all answered), it
turns replies into plain records, and it removes the reply and event queues
it created, whatever way the command ends.  No click, no rich here.
"""
