"""Everything specific to kombu's Redis transport: adapter, publish, Lua, operations, unacked."""
