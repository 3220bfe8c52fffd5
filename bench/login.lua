-- wrk script for bench/run.sh: every request is a login. With BENCH_JWT set it is a JWT-auth login,
-- {identityId, jwt} from BENCH_IDENTITY_ID and BENCH_JWT; otherwise a universal-auth login, {clientId,
-- clientSecret} from BENCH_CLIENT_ID and BENCH_CLIENT_SECRET. Credentials come from the environment so that
-- they never appear on a command line. Setting wrk.method, wrk.body and wrk.headers at the top level lets wrk
-- build the request once per thread, so the script costs nothing per request.
local function need(name)
    local value = os.getenv(name)
    if value == nil or value == "" then
        error(name .. " is not set")
    end
    return value
end

-- A JSON string literal: quotes, backslashes and control characters escaped.
local function json_string(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
        return string.format("\\u%04x", c:byte())
    end) .. '"'
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local jwt = os.getenv("BENCH_JWT")
if jwt ~= nil and jwt ~= "" then
    wrk.body = '{"identityId":' .. json_string(need("BENCH_IDENTITY_ID")) ..
        ',"jwt":' .. json_string(jwt) .. '}'
else
    wrk.body = '{"clientId":' .. json_string(need("BENCH_CLIENT_ID")) ..
        ',"clientSecret":' .. json_string(need("BENCH_CLIENT_SECRET")) .. '}'
end
