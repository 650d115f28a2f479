"""The Lua scripts that make Redis changes atomic (each script runs as one step).

A selected change walks a queue by *rotating* it: ROTATE moves a batch from the
tail (next message) to the head inside one script (RPOP n, LPUSH), so every
message stays in the list at every instant; WALK does the same for a window
the caller has read and judged, dropping or moving the selected messages on
the way, so each costs O(batch), never O(depth).
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

# KEYS[1] list, KEYS[2] destination list (mode 'move'); ARGV[1] the deepest
# message of the window the caller read from the tail, ARGV[2] the window's
# size, ARGV[3] 'drop' or 'move', ARGV[4] how many messages of the window have
# ARGV[1]'s bytes (its rank from the tail), ARGV[5..] for each selected message
# its position in the window (0 = next) and its bytes ('drop'), plus its new
# bytes ('move').  In one step: pop the tail up to and including the window's
# deepest message (the window, less what consumers took, plus anything RPUSHed
# there since), push the selected ones to the destination (or nowhere) and the
# rest back at the head, in order.  A message is selected by its position,
# counted from the deep end of the window, and leaves only if it still has the
# selected bytes there: identical copies around it stay where they were.
# Returns {popped, selected ones that left}.
WALK = _CHECK + """
local key = KEYS[1]
local move = ARGV[3] == 'move'
if move then local err = check(KEYS[2]) if err then return err end end
local size = tonumber(ARGV[2])
local pos = redis.call('LPOS', key, ARGV[1], 'RANK', -tonumber(ARGV[4]), 'MAXLEN', size + 1000)
if not pos then return {0, 0} end
local items = redis.call('RPOP', key, redis.call('LLEN', key) - pos)
local shift = #items - size
local take, done = {}, 0
local step = move and 3 or 2
for i = 5, #ARGV, step do
  local at = tonumber(ARGV[i]) + 1 + shift
  if at >= 1 and at <= #items and not take[at] and items[at] == ARGV[i + 1] then
    take[at] = move and ARGV[i + 2] or true
    done = done + 1
  end
end
local keep, out = {}, {}
for i = 1, #items do
  if take[i] then
    if move then out[#out + 1] = take[i] end
  else
    keep[#keep + 1] = items[i]
  end
end
if #out > 0 then redis.call('LPUSH', KEYS[2], unpack(out)) end
if #keep > 0 then redis.call('LPUSH', key, unpack(keep)) end
return {#items, done}
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
