-- wrk script for bench/load.py: each connection's requests cycle through a list of the project's 100 secrets
-- (admin token), an update of one secret (each wrk thread writes its own keys, so concurrent writes go to
-- different secrets) and a universal-auth login. Tokens and the client secret come from the environment.
-- wrk runs LuaJIT (Lua 5.1).
local function need(name)
    local value = os.getenv(name)
    if value == nil or value == "" then
        error(name .. " is not set")
    end
    return value
end
local token = need("BENCH_TOKEN")
local project = need("BENCH_PROJECT")
local login_body = '{"clientId":"' .. need("BENCH_CLIENT_ID") .. '","clientSecret":"' ..
    need("BENCH_CLIENT_SECRET") .. '"}'
local list_path = "/api/v3/secrets/raw?workspaceId=" .. project .. "&environment=dev&secretPath=/"
local admin = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
local public = {["Content-Type"] = "application/json"}

local threads = 0
setup = function(thread)
    thread:set("first", threads * 50)
    threads = threads + 1
end

local n = 0
request = function()
    n = n + 1
    local kind = n % 3
    if kind == 0 then
        return wrk.format("GET", list_path, admin, nil)
    elseif kind == 1 then
        local key = string.format("KEY_%03d", (first or 0) + (n % 50) + 1)
        local body = '{"workspaceId":"' .. project .. '","environment":"dev","secretValue":"w' .. n .. '"}'
        return wrk.format("PATCH", "/api/v3/secrets/raw/" .. key, admin, body)
    end
    return wrk.format("POST", "/api/v1/auth/universal-auth/login", public, login_body)
end
