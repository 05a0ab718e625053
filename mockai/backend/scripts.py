"""The Lua scripts that make shared state atomic in Redis (see redis_state.py).

Each runs as one step inside Redis: no other worker's command can come in between, which is what
"match + count the call", "charge if it fits" and "insert + evict the oldest" need.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis


class Script:
    """A Lua script run by its SHA1, loaded again when Redis lost it (a restart)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, client: Redis, *, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis_errors.NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


# Deletes the records of `names` (the keys under `prefix`, already out of the order) and gives
# back what `add_within` weighed them: `weights` (hash: key -> weight), their `total` (counter).
_FORGET = """
local function forget(prefix, names, weights, total)
  for _, name in ipairs(names) do
    redis.call('DEL', prefix .. name)
    local weight = redis.call('HGET', weights, name)
    if weight then
      redis.call('HDEL', weights, name)
      redis.call('DECRBY', total, weight)
    end
  end
end
"""

# Makes `key` (a record stored under `prefix`) the newest; the oldest beyond `capacity` go.
# KEYS as PUT_RECORD.
_INSERT = """
local function insert(prefix, key, capacity)
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), key)
  local size = redis.call('ZCARD', KEYS[1])
  if size > capacity then
    local old = redis.call('ZRANGE', KEYS[1], 0, size - capacity - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, size - capacity - 1)
    forget(prefix, old, KEYS[4], KEYS[5])
  end
  return size
end
"""

# KEYS: order (zset), inserted (counter), the stores (set), weights (hash), weight (counter);
# ARGV: record key prefix, key, data, capacity, the store's name. The record becomes the newest;
# the oldest beyond `capacity` are deleted. The store's name joins the set a reset reads
# (`RedisBackend.forget_all`).
PUT_RECORD = Script(
    _FORGET
    + _INSERT
    + """
redis.call('SADD', KEYS[3], ARGV[5])
redis.call('SET', ARGV[1] .. ARGV[2], ARGV[3])
return insert(ARGV[1], ARGV[2], tonumber(ARGV[4]))
"""
)

# KEYS and ARGV as PUT_RECORD. Stores the record only if the key holds none; returns the data
# the key holds afterwards.
PUT_NEW_RECORD = Script(
    _FORGET
    + _INSERT
    + """
local held = redis.call('GET', ARGV[1] .. ARGV[2])
if held then return held end
redis.call('SADD', KEYS[3], ARGV[5])
redis.call('SET', ARGV[1] .. ARGV[2], ARGV[3])
insert(ARGV[1], ARGV[2], tonumber(ARGV[4]))
return ARGV[3]
"""
)

# KEYS as PUT_RECORD, then serial (counter); ARGV: record key prefix, data, weight, the most
# records (at most the capacity), the most weight in all, the store's name. Stores the record
# under the next serial number if the records stay within both bounds; returns the number, or
# nil (nothing stored, no number taken). The check and the charge are one step: workers adding
# at once never pass the bounds together, and never have to retry.
ADD_WITHIN = Script(
    _FORGET
    + _INSERT
    + """
local weight = tonumber(ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return false end
if tonumber(redis.call('GET', KEYS[5]) or '0') + weight > tonumber(ARGV[5]) then return false end
redis.call('SADD', KEYS[3], ARGV[6])
local number = redis.call('INCR', KEYS[6])
local key = tostring(number)
redis.call('SET', ARGV[1] .. key, ARGV[2])
redis.call('HSET', KEYS[4], key, weight)
redis.call('INCRBY', KEYS[5], weight)
insert(ARGV[1], key, tonumber(ARGV[4]))
return number
"""
)

# KEYS: order, inserted; ARGV: key. Makes a record still kept the newest (the last evicted).
TOUCH_RECORD = Script(
    """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[1])
end
return 0
"""
)

# KEYS: order, weights, weight; ARGV: record key prefix, key. Returns the record's data (nil
# if there was none); what `add_within` weighed it is given back in the same step.
POP_RECORD = Script(
    _FORGET
    + """
local data = redis.call('GET', ARGV[1] .. ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[2])
forget(ARGV[1], {ARGV[2]}, KEYS[2], KEYS[3])
return data
"""
)

# KEYS: order, serial, inserted, weights, weight; ARGV: record key prefix.
CLEAR_RECORDS = Script(
    """
local names = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, name in ipairs(names) do redis.call('DEL', ARGV[1] .. name) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return #names
"""
)

# KEYS: the counts (hash); ARGV: the request's key, the most keys kept. Returns how many times
# the key was seen before. Past the limit the counts start over (bounded, like in-process).
OCCURRENCE = Script(
    """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if n == 1 and redis.call('HLEN', KEYS[1]) > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], ARGV[1], 1)
end
return n - 1
"""
)

# KEYS: attempts (hash); ARGV: the call's key, attempts below this number fail, the most keys.
# Returns this attempt's number; a passing attempt ends the call (numbering starts over).
ATTEMPT = Script(
    """
local a = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if a < tonumber(ARGV[2]) then
  if a == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
    redis.call('DEL', KEYS[1])
  end
  redis.call('HSET', KEYS[1], ARGV[1], a + 1)
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return a
"""
)

# KEYS: a model's window (hash: bucket number -> "requests:tokens"), the windows (zset: model ->
# when its window expires, read by a reset: `FORGET_BUDGETS`).
# ARGV: bucket width (seconds), buckets per window, rpm, tpm, tokens to charge (-1: only read),
# enforce (1: refuse what does not fit), the model. On Redis's clock, so every host agrees.
# Returns {admitted (1/0), now, requests, tokens, newest bucket with requests, newest bucket with
# tokens (-1: none)} after the charge: what the headers need, whatever the window holds (60
# buckets under a steady load; handing them all over cost ~35 us a request to read back); and,
# when it refused, the buckets as bucket, counts, bucket, counts, ... (when they free up).
# Lua's numbers are doubles: a count is held to 2^53 (exact, one past the largest budget, and
# printed right by '%d', which turns a double past 2^63 into a negative number that no longer
# reads back); a bucket that does not read back (written by another program) is dropped.
CHARGE = Script(
    """
local most = 9007199254740992
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local width = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local current = math.floor(now / width)
local oldest = current - count + 1
local flat = redis.call('HGETALL', KEYS[1])
local requests, tokens = 0, 0
local kept = {}
for i = 1, #flat, 2 do
  local number = tonumber(flat[i])
  if not number or number < oldest then
    redis.call('HDEL', KEYS[1], flat[i])
  else
    local r, k = string.match(flat[i + 1], '^(%d+):(%d+)$')
    if r then
      r, k = math.min(tonumber(r), most), math.min(tonumber(k), most)
      requests, tokens = requests + r, tokens + k
      kept[flat[i]] = {r, k}
    else
      redis.call('HDEL', KEYS[1], flat[i])
    end
  end
end
local charge = math.min(tonumber(ARGV[5]), most)
local admitted = 1
if charge >= 0 then
  local over = requests + 1 > tonumber(ARGV[3]) or tokens + charge > tonumber(ARGV[4])
  if ARGV[6] == '1' and over then
    admitted = 0
  else
    local field = string.format('%d', current)
    local counts = kept[field] or {0, 0}
    counts = {math.min(counts[1] + 1, most), math.min(counts[2] + charge, most)}
    kept[field] = counts
    redis.call('HSET', KEYS[1], field, string.format('%d:%d', counts[1], counts[2]))
    local ttl = math.ceil(width * count * 1000) + 1000
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', math.floor(now * 1000))
    redis.call('ZADD', KEYS[2], math.floor(now * 1000) + ttl, ARGV[7])
  end
end
local newest_requests, newest_tokens = -1, -1
requests, tokens = 0, 0
for field, counts in pairs(kept) do
  local number = tonumber(field)
  requests, tokens = requests + counts[1], tokens + counts[2]
  if counts[1] > 0 and number > newest_requests then newest_requests = number end
  if counts[2] > 0 and number > newest_tokens then newest_tokens = number end
end
local out = {admitted, string.format('%.6f', now), requests, tokens, newest_requests, newest_tokens}
if admitted == 0 then
  for field, counts in pairs(kept) do
    table.insert(out, field)
    table.insert(out, string.format('%d:%d', counts[1], counts[2]))
  end
end
return out
"""
)

# KEYS: seq (counter), entries (hash), order (zset), bodies (hash), weighed (zset), bytes (counter).
# ARGV: the entry without its bodies (as the journal keeps it once they are dropped), its bodies
# ('' when it has none to keep), capacity, the bodies' byte budget.
# Returns the entry's sequence number. The oldest entries beyond `capacity` go; past the byte
# budget, the oldest bodies go (their entries stay), as in-process (pipeline/journal.py).
JOURNAL_ADD = Script(
    """
local function drop_bodies(seq)
  local size = redis.call('HSTRLEN', KEYS[4], seq)
  if size > 0 then
    redis.call('HDEL', KEYS[4], seq)
    redis.call('DECRBY', KEYS[6], size)
  end
  redis.call('ZREM', KEYS[5], seq)
end
local seq = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], seq, seq)
if #ARGV[2] > 0 then
  redis.call('HSET', KEYS[4], seq, ARGV[2])
  redis.call('ZADD', KEYS[5], seq, seq)
  redis.call('INCRBY', KEYS[6], #ARGV[2])
end
local capacity = tonumber(ARGV[3])
local size = redis.call('ZCARD', KEYS[3])
if size > capacity then
  local old = redis.call('ZRANGE', KEYS[3], 0, size - capacity - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, size - capacity - 1)
  for _, name in ipairs(old) do
    redis.call('HDEL', KEYS[2], name)
    drop_bodies(name)
  end
end
local budget = tonumber(ARGV[4])
while tonumber(redis.call('GET', KEYS[6]) or '0') > budget do
  local oldest = redis.call('ZRANGE', KEYS[5], 0, 0)
  if #oldest == 0 then break end
  drop_bodies(oldest[1])
end
return seq
"""
)

# KEYS: the windows (zset, see CHARGE); ARGV: the windows' key prefix. Deletes every window.
FORGET_BUDGETS = Script(
    """
local models = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, model in ipairs(models) do redis.call('DEL', ARGV[1] .. model) end
redis.call('DEL', KEYS[1])
return #models
"""
)

# KEYS: entries; ARGV: seq, entry JSON. Completes an entry still in the journal.
JOURNAL_SET = Script(
    """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 0
"""
)

# KEYS: version, served (hash); ARGV: the caller's version, then name, limit (-1: none) pairs.
# Returns {-2} when the caller's rules are stale; {index, count} for the first candidate not
# used up (counted); {-1, 0, name, count, ...} with every count when none is left.
PICK_RULE = Script(
    """
local version = redis.call('GET', KEYS[1]) or ''
if version ~= ARGV[1] then return {-2} end
for i = 2, #ARGV, 2 do
  local limit = tonumber(ARGV[i + 1])
  local served = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  if limit < 0 or served < limit then
    return {(i - 2) / 2, redis.call('HINCRBY', KEYS[2], ARGV[i], 1)}
  end
end
local out = {-1, 0}
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all do table.insert(out, all[i]) end
return out
"""
)

# KEYS: version, served (hash); ARGV: the caller's version, then name, limit (-1: none) pairs
# (distinct names). Counts a call for every one if none is used up and returns their counts;
# nil (nothing counted) when one is used up or the caller's rules are stale.
PICK_EACH = Script(
    """
local version = redis.call('GET', KEYS[1]) or ''
if version ~= ARGV[1] then return false end
for i = 2, #ARGV, 2 do
  local limit = tonumber(ARGV[i + 1])
  local served = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  if limit >= 0 and served >= limit then return false end
end
local counts = {}
for i = 2, #ARGV, 2 do
  table.insert(counts, redis.call('HINCRBY', KEYS[2], ARGV[i], 1))
end
return counts
"""
)
