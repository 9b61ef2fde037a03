-- The closing of a gated limiter script (core/ratelimit/algorithms.py puts the prelude,
-- then the algorithm's own text as the function decide(), then this): the check, and
-- the command it guards run only when the check admits, in one atomic script, so a
-- refused request changes no data. ARGV from `first` on: the command's name, the
-- position (in the command) of an argument sent hex-encoded (0: none; JSON carries only
-- text), then the command's arguments after its keys; its keys are KEYS[2..].
-- Returns the check's answer, plus the command's reply (a status as its text) when it ran.
local r = decide()
if r[1] == 1 then
  local a = {ARGV[first]}
  for i = 2, #KEYS do a[#a + 1] = KEYS[i] end
  for i = first + 2, #ARGV do a[#a + 1] = ARGV[i] end
  local at = tonumber(ARGV[first + 1])
  if at > 0 then
    a[at] = (a[at]:gsub('%x%x', function(h) return string.char(tonumber(h, 16)) end))
  end
  local reply = call(unpack(a))
  if type(reply) == 'table' and reply.ok then reply = reply.ok end
  r[7] = calls
  r[8] = reply
end
return r
