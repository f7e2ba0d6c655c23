-- socketlab.lua: Wireshark / tshark dissector for the Python socket guide's application protocol.
--
-- A message is a 2-byte big-endian header length, a JSON header (UTF-8) with byteorder,
-- content-type, content-encoding and content-length (plus extras such as x-stats), then
-- content-length bytes of content (docs/protocol.md). This dissector
--
--   * reassembles messages across TCP segments and splits several messages in one segment
--     (dissect_tcp_pdus);
--   * shows the header length, every header field, and the content: JSON as JSON, text in its
--     declared encoding, binary/x-socketlab-array as numbers read in the byte order the header
--     declares (so a big-endian sender's arrays read right), anything else as bytes;
--   * flags malformed frames with expert info (a header length past the limit, a header that
--     is not a JSON object, a content-length past the limit, content shorter than declared,
--     an array that is not a whole number of values), never with a Lua error;
--   * registers on the lab's app-server ports and as a heuristic dissector on any TCP port.
--
-- Use: tshark -X lua_script:services/wireshark/socketlab.lua -r capture.pcap -Y socketlab
-- (the lab image installs it in Wireshark's global plugin folder: there it loads by itself).

local MAX_HEADER_LENGTH = 16 * 1024          -- socketlab.protocol.MAX_HEADER_LENGTH
local MAX_CONTENT_LENGTH = 4 * 1024 * 1024   -- socketlab.protocol.MAX_CONTENT_LENGTH
-- The app-server ports of services/hosts/server.sh (lab_tests/unit/test_dissector.py checks).
local PORTS = { 65432, 65433, 65434, 65437 }
local ARRAY_MEDIA_TYPE = "binary/x-socketlab-array"
-- dtype -> bytes per value and kind (socketlab.arrays.DTYPES)
local DTYPES = {
    int16 = { 2, "int" }, uint16 = { 2, "uint" }, int32 = { 4, "int" }, uint32 = { 4, "uint" },
    int64 = { 8, "int" }, uint64 = { 8, "uint" }, float32 = { 4, "float" }, float64 = { 8, "float" },
}
-- content-encoding (socketlab.protocol.CONTENT_ENCODINGS and aliases) -> Wireshark encoding
local ENCODINGS = {
    ["utf-8"] = ENC_UTF_8, utf8 = ENC_UTF_8, ascii = ENC_ASCII, ["us-ascii"] = ENC_ASCII,
    ["latin-1"] = ENC_ISO_8859_1, latin1 = ENC_ISO_8859_1, ["iso-8859-1"] = ENC_ISO_8859_1,
    ["utf-16-le"] = ENC_UTF_16 + ENC_LITTLE_ENDIAN, ["utf-16le"] = ENC_UTF_16 + ENC_LITTLE_ENDIAN,
    ["utf-16-be"] = ENC_UTF_16 + ENC_BIG_ENDIAN, ["utf-16be"] = ENC_UTF_16 + ENC_BIG_ENDIAN,
    ["utf-32-le"] = ENC_UCS_4 + ENC_LITTLE_ENDIAN, ["utf-32le"] = ENC_UCS_4 + ENC_LITTLE_ENDIAN,
    ["utf-32-be"] = ENC_UCS_4 + ENC_BIG_ENDIAN, ["utf-32be"] = ENC_UCS_4 + ENC_BIG_ENDIAN,
}

local proto = Proto("socketlab", "socketlab (the Python socket guide's application protocol)")

local f = {
    direction = ProtoField.string("socketlab.direction", "Direction"),
    header_length = ProtoField.uint16("socketlab.header_length", "Header length", base.DEC),
    header = ProtoField.string("socketlab.header", "JSON header"),
    byteorder = ProtoField.string("socketlab.byteorder", "byteorder"),
    content_type = ProtoField.string("socketlab.content_type", "content-type"),
    content_encoding = ProtoField.string("socketlab.content_encoding", "content-encoding"),
    content_length = ProtoField.uint32("socketlab.content_length", "content-length", base.DEC),
    extra_name = ProtoField.string("socketlab.extra.name", "Extra header"),
    extra_value = ProtoField.string("socketlab.extra.value", "Extra header value (JSON)"),
    content = ProtoField.bytes("socketlab.content", "Content"),
    json = ProtoField.string("socketlab.json", "JSON content"),
    text = ProtoField.string("socketlab.text", "Text content"),
    dtype = ProtoField.string("socketlab.array.dtype", "Array dtype"),
    count = ProtoField.uint32("socketlab.array.count", "Array values", base.DEC),
    int = ProtoField.int64("socketlab.array.int", "Value", base.DEC),
    uint = ProtoField.uint64("socketlab.array.uint", "Value", base.DEC),
    float = ProtoField.double("socketlab.array.float", "Value"),
}
proto.fields = {
    f.direction, f.header_length, f.header, f.byteorder, f.content_type, f.content_encoding,
    f.content_length, f.extra_name, f.extra_value, f.content, f.json, f.text, f.dtype, f.count,
    f.int, f.uint, f.float,
}

local function malformed(abbrev, text)
    return ProtoExpert.new("socketlab." .. abbrev, text, expert.group.MALFORMED, expert.severity.WARN)
end
local e = {
    header_length = malformed("header_length.bad", "Header length outside 1.." .. MAX_HEADER_LENGTH),
    header_json = malformed("header.not_json", "Header is not a JSON object"),
    header_field = malformed("header.bad_field", "A required header is missing or invalid"),
    content_length = malformed("content_length.over_limit",
                               "content-length past the limit of " .. MAX_CONTENT_LENGTH .. " bytes"),
    short = malformed("content.short", "Content shorter than declared"),
    array = malformed("array.bad", "Array content is not a whole number of values of its dtype"),
    encoding = malformed("content_encoding.unknown", "Unknown content-encoding"),
}
proto.experts = { e.header_length, e.header_json, e.header_field, e.content_length, e.short,
                  e.array, e.encoding }

local function warn(tree, expert_field, text)
    if text then tree:add_proto_expert_info(expert_field, tostring(text))
    else tree:add_proto_expert_info(expert_field) end
end

-- JSON --------------------------------------------------------------------------------------
-- A small strict parser: objects keep their keys' order and each value's source text. It
-- raises (error) on anything that is not JSON; callers use pcall, so a bad header is expert
-- info, never a Lua error.

local NULL = setmetatable({}, { __tostring = function() return "null" end })
local decode_value

local function skip(s, i)
    return s:find("[^ \t\r\n]", i) or #s + 1
end

local function utf8_char(code)
    if code < 0x80 then return string.char(code) end
    if code < 0x800 then
        return string.char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
    end
    if code < 0x10000 then
        return string.char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40,
                           0x80 + code % 0x40)
    end
    return string.char(0xF0 + math.floor(code / 0x40000), 0x80 + math.floor(code / 0x1000) % 0x40,
                       0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function decode_string(s, i)  -- s:sub(i, i) == '"'
    local parts, j = {}, i + 1
    while true do
        local k = s:find('["\\%c]', j)
        if not k then error("unterminated string", 0) end
        parts[#parts + 1] = s:sub(j, k - 1)
        local c = s:sub(k, k)
        if c == '"' then return table.concat(parts), k + 1 end
        if c ~= "\\" then error("control character in string", 0) end
        local esc = s:sub(k + 1, k + 1)
        if esc == "u" then
            local hex = s:sub(k + 2, k + 5)
            if not hex:match("^%x%x%x%x$") then error("bad \\u escape", 0) end
            local code = tonumber(hex, 16)
            j = k + 6
            if code >= 0xD800 and code <= 0xDBFF and s:sub(j, j + 1) == "\\u" then
                local low = tonumber(s:sub(j + 2, j + 5), 16)
                if low and low >= 0xDC00 and low <= 0xDFFF then
                    code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
                    j = j + 6
                end
            end
            parts[#parts + 1] = utf8_char(code)
        elseif ESCAPES[esc] then
            parts[#parts + 1] = ESCAPES[esc]
            j = k + 2
        else
            error("bad escape", 0)
        end
    end
end

local function decode_object(s, i, depth)
    local object = { keys = {}, values = {}, raw = {} }
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return object, i + 1 end
    while true do
        if s:sub(i, i) ~= '"' then error("object key is not a string", 0) end
        local key
        key, i = decode_string(s, i)
        i = skip(s, i)
        if s:sub(i, i) ~= ":" then error("missing ':'", 0) end
        local start = skip(s, i + 1)
        local value
        value, i = decode_value(s, start, depth + 1)
        if object.values[key] == nil then object.keys[#object.keys + 1] = key end
        object.values[key], object.raw[key] = value, s:sub(start, i - 1)
        i = skip(s, i)
        local c = s:sub(i, i)
        if c == "}" then return object, i + 1 end
        if c ~= "," then error("missing ',' or '}'", 0) end
        i = skip(s, i + 1)
    end
end

local function decode_array_value(s, i, depth)
    local items = { array = true }
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return items, i + 1 end
    while true do
        items[#items + 1], i = decode_value(s, i, depth + 1)
        i = skip(s, i)
        local c = s:sub(i, i)
        if c == "]" then return items, i + 1 end
        if c ~= "," then error("missing ',' or ']'", 0) end
        i = skip(s, i + 1)
    end
end

function decode_value(s, i, depth)
    if depth > 32 then error("nested too deep", 0) end  -- socketlab.protocol.MAX_JSON_DEPTH
    i = skip(s, i)
    local c = s:sub(i, i)
    if c == "{" then return decode_object(s, i, depth) end
    if c == "[" then return decode_array_value(s, i, depth) end
    if c == '"' then return decode_string(s, i) end
    for word, value in pairs({ ["true"] = true, ["false"] = false, null = NULL }) do
        if s:sub(i, i + #word - 1) == word then return value, i + #word end
    end
    local number = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    if number and tonumber(number) then return tonumber(number), i + #number end
    error("unexpected character at " .. i, 0)
end

local function json_object(text)
    local value, i = decode_value(text, 1, 1)
    if skip(text, i) <= #text then error("trailing data", 0) end
    if type(value) ~= "table" or not value.keys then error("not an object", 0) end
    return value
end

-- framing -----------------------------------------------------------------------------------

-- What the bytes at `offset` say about the message there: nil if more bytes are needed to
-- know its length; else a table with total (the bytes this message takes, or, for a frame too
-- malformed to find its end, the rest of the segment) and what was found.
local function frame(tvb, offset)
    local avail = tvb:len() - offset
    if avail < 2 then return nil end
    local hlen = tvb(offset, 2):uint()
    if hlen == 0 or hlen > MAX_HEADER_LENGTH then
        return { bad = e.header_length, hlen = hlen, total = avail }
    end
    if avail < 2 + hlen then return nil end
    local ok, header = pcall(json_object, tvb(offset + 2, hlen):raw())
    if not ok then return { bad = e.header_json, hlen = hlen, total = avail, why = header } end
    local clen = header.values["content-length"]
    if type(clen) ~= "number" or clen < 0 or clen ~= math.floor(clen) then
        return { bad = e.header_field, hlen = hlen, header = header, total = 2 + hlen,
                 why = "content-length is not a non-negative integer" }
    end
    if clen > MAX_CONTENT_LENGTH then
        return { bad = e.content_length, hlen = hlen, header = header, clen = clen, total = avail }
    end
    return { hlen = hlen, header = header, clen = clen, total = 2 + hlen + clen }
end

local SERVER_PORT = {}
for _, port in ipairs(PORTS) do SERVER_PORT[port] = true end

local function direction(pinfo)
    if SERVER_PORT[pinfo.dst_port] then return "request" end
    if SERVER_PORT[pinfo.src_port] then return "response" end
    return "message"  -- found by the heuristic: which side is the server is not known
end

local function add_array(tree, content, dtype, byteorder)
    local spec = DTYPES[dtype]
    local size, kind = spec[1], spec[2]
    local count = math.floor(content:len() / size)
    tree:add(f.dtype, dtype)
    tree:add(f.count, count)
    if content:len() % size ~= 0 then warn(tree, e.array) end
    local little = byteorder == "little"
    for k = 0, count - 1 do
        local range = content(k * size, size)
        if kind == "float" then
            tree:add(f.float, range, little and range:le_float() or range:float())
        elseif kind == "int" then
            tree:add(f.int, range, little and range:le_int64() or range:int64())
        else
            tree:add(f.uint, range, little and range:le_uint64() or range:uint64())
        end
    end
    return count
end

local function add_content(tree, pinfo, content, ctype, encoding, byteorder)
    local media, dtype = ctype:match("^%s*([^;]-)%s*;%s*dtype%s*=%s*([%w]+)%s*$")
    media = (media or ctype):lower()
    if media == ARRAY_MEDIA_TYPE and DTYPES[dtype] and (byteorder == "little" or byteorder == "big"
                                                         or byteorder == "network") then
        return add_array(tree, content, dtype, byteorder) .. " values"
    end
    local enc = type(encoding) == "string" and ENCODINGS[encoding:lower():gsub("_", "-")]
    if media:sub(1, 5) == "text/" then
        if not enc then
            warn(tree, e.encoding)
            tree:add(f.content, content)
            return content:len() .. " bytes"
        end
        local text = content:string(enc)
        if media == "text/json" then
            tree:add(f.json, content, text)
            local json = Dissector.get("json")
            if json and enc == ENC_UTF_8 then json:call(content:tvb(), pinfo, tree) end
        else
            tree:add(f.text, content, text)
        end
        return #text > 60 and text:sub(1, 60) .. "..." or text
    end
    tree:add(f.content, content)
    return content:len() .. " bytes"
end

local packet_info = nil  -- the Info column of this packet's messages so far

-- One whole message (dissect_tcp_pdus hands over exactly one), or a malformed rest of segment,
-- or (only when TCP reassembly is off) the part of a message this segment holds.
local function dissect_message(tvb, pinfo, root)
    local tree = root:add(proto, tvb())
    local fr = frame(tvb, 0)
    if not fr then  -- a message cut short: its header length, if there, and the warning
        if tvb:len() >= 2 then tree:add(f.header_length, tvb(0, 2)) end
        tree:add_proto_expert_info(e.short, string.format("Message cut short after %d bytes", tvb:len()))
        pinfo.cols.protocol = "SOCKETLAB"
        return tvb:len()
    end
    local dir = direction(pinfo)
    tree:add(f.direction, dir):set_generated()
    local summary
    tree:add(f.header_length, tvb(0, 2))
    if fr.bad == e.header_length or fr.bad == e.header_json then
        warn(tree, fr.bad, fr.why)
        summary = fr.bad == e.header_length and ("bad header length " .. fr.hlen) or "header not JSON"
    else
        local header = fr.header
        tree:add(f.header, tvb(2, fr.hlen))
        local ht = tree
        local values = header and header.values or {}
        for _, key in ipairs(header and header.keys or {}) do
            local value = values[key]
            if key == "byteorder" and type(value) == "string" then ht:add(f.byteorder, value)
            elseif key == "content-type" and type(value) == "string" then ht:add(f.content_type, value)
            elseif key == "content-encoding" and type(value) == "string" then ht:add(f.content_encoding, value)
            elseif key == "content-length" and type(value) == "number" and value >= 0 then
                ht:add(f.content_length, value)
            else
                ht:add(f.extra_name, key)
                ht:add(f.extra_value, header.raw[key])
            end
        end
        local ctype = values["content-type"]
        if fr.bad then
            warn(tree, fr.bad, fr.why)
            summary = "malformed header"
        elseif type(ctype) ~= "string" or type(values["byteorder"]) ~= "string" then
            warn(tree, e.header_field, "byteorder and content-type must be strings")
            summary = "malformed header"
        else
            local start = 2 + fr.hlen
            local have = tvb:len() - start
            if have < fr.clen then
                warn(tree, e.short, string.format(
                    "Content shorter than declared: %d of %d bytes", have, fr.clen))
            end
            local n = math.min(have, fr.clen)
            local content = n > 0 and tvb(start, n) or nil
            summary = ctype
            if content then
                summary = ctype .. " " .. add_content(tree, pinfo, content, ctype,
                                                      values["content-encoding"], values["byteorder"])
            end
        end
    end
    pinfo.cols.protocol = "SOCKETLAB"
    local info = dir .. " " .. summary
    packet_info = packet_info and (packet_info .. "; " .. info) or info
    pinfo.cols.info:set(packet_info)  -- set, not appended: the JSON dissector writes there too
    return tvb:len()
end

local function message_length(tvb, pinfo, offset)
    local fr = frame(tvb, offset)
    return fr and fr.total or 0  -- 0: one more segment, the length is not known yet
end

function proto.dissector(tvb, pinfo, tree)
    packet_info = nil
    return dissect_tcp_pdus(tvb, tree, 2, message_length, dissect_message, true)
end

local tcp_port = DissectorTable.get("tcp.port")
for _, port in ipairs(PORTS) do tcp_port:add(port, proto) end

-- Elsewhere: a TCP payload that starts like this protocol (a sane header length, then a JSON
-- object naming a content- field) is taken, and its conversation with it.
local function heuristic(tvb, pinfo, tree)
    if tvb:len() < 4 then return false end
    local hlen = tvb(0, 2):uint()
    if hlen == 0 or hlen > MAX_HEADER_LENGTH or tvb(2, 1):uint() ~= 0x7B then return false end
    local head = tvb(2, math.min(hlen, tvb:len() - 2)):raw()
    if not head:find('"content%-') then return false end
    pinfo.conversation = proto
    proto.dissector(tvb, pinfo, tree)
    return true
end
proto:register_heuristic("tcp", heuristic)
