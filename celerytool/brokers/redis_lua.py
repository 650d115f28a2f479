"""The Lua scripts that make Redis changes atomic (each script runs as one step).

A selected change walks a queue by *rotating* it: ROTATE moves a batch from the
tail (next message) to the head inside one script (RPOP n, LPUSH), so every
message stays in the list at every instant; the caller then decides, and
REMOVE / MOVE take the chosen ones out with ``LREM key 1 value`` (which scans
from the head, where the batch now sits, so each costs O(batch), not O(depth)).
Every script checks key types before its first write: a WRONGTYPE error after
a write would otherwise leave the change half done.
"""

from __future__ import annotations

_CHECK = """
local function check(key)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= 'list' then
    return redis.error_reply('WRONGTYPE ' .. key .. ' is a ' .. t .. ', not a list')
  end
end
"""

# KEYS[1] list; ARGV[1] max; ARGV[2] marker; ARGV[3] '1' when a marker is given;
# ARGV[4] '1' to return the rotated messages (TAKE) rather than {count, reached}.
# Rotates up to max messages tail -> head (RPOP n, then LPUSH: the order of the
# batch is kept), stopping at the marker, the first message an earlier call
# rotated: the walk never examines one twice.  Popped messages from the marker
# on are pushed back to the tail in their order, in the same step.
ROTATE = """
local key, n = KEYS[1], tonumber(ARGV[1])
local items = redis.call('RPOP', key, n)
if not items then
  if ARGV[4] == '1' then return {} end
  return {0, 1}
end
local k, reached = #items, 0
if ARGV[3] == '1' then
  for i = 1, #items do
    if items[i] == ARGV[2] then k = i - 1 reached = 1 break end
  end
  if reached == 1 then
    local back = {}
    for i = #items, k + 1, -1 do back[#back + 1] = items[i] end
    redis.call('RPUSH', key, unpack(back))
  end
end
if k > 0 then redis.call('LPUSH', key, unpack(items, 1, k)) end
if ARGV[4] == '1' then
  for i = #items, k + 1, -1 do items[i] = nil end
  return items
end
if #items < n then reached = 1 end
return {k, reached}
"""

# KEYS[1] list; ARGV values.  Remove one occurrence of each; 1/0 per value.
REMOVE = """
local out = {}
for i = 1, #ARGV do out[i] = redis.call('LREM', KEYS[1], 1, ARGV[i]) end
return out
"""

# KEYS[1] source list, KEYS[2] destination list; ARGV old1, new1, old2, new2, ...
# Each message leaves the source and enters the destination in the same step.
MOVE = _CHECK + """
local err = check(KEYS[2]) if err then return err end
local out = {}
for i = 1, #ARGV, 2 do
  local r = redis.call('LREM', KEYS[1], 1, ARGV[i])
  if r == 1 then redis.call('LPUSH', KEYS[2], ARGV[i + 1]) end
  out[#out + 1] = r
end
return out
"""

# KEYS: the priority lists of a queue.  Count and delete them together.
PURGE_ALL = _CHECK + """
for i = 1, #KEYS do local err = check(KEYS[i]) if err then return err end end
local n = 0
for i = 1, #KEYS do
  n = n + redis.call('LLEN', KEYS[i])
  redis.call('DEL', KEYS[i])
end
return n
"""

# KEYS[1] unacked hash, KEYS[2] unacked_index zset, KEYS[3..] target lists;
# ARGV[1] delivery tag, ARGV[2] the entry as read, ARGV[3] the payload to push.
# kombu's restore_by_tag in one step: only if the entry is unchanged (no
# worker acked or restored it meanwhile), drop it from both indices and RPUSH
# the payload to each target (the head: consumed next, as kombu does).
RESTORE = _CHECK + """
for i = 3, #KEYS do local err = check(KEYS[i]) if err then return err end end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
for i = 3, #KEYS do redis.call('RPUSH', KEYS[i], ARGV[3]) end
return 1
"""
