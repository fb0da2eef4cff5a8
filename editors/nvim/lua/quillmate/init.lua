--- quillmate for Neovim: ghost-text continuations, rewrites with a preview,
--- templates and provenance, all through `quillmate lsp` (see editors/PROTOCOL.md).
---
--- Works on Neovim 0.7+ with the built-in LSP client. The suggestion is drawn
--- as extmarks: the first line as virtual text after the line, the rest as
--- virtual lines, redrawn as `quillmate/progress` notifications stream in.
local M = {}

local api = vim.api

local defaults = {
  --- The server command; a list, as for vim.lsp.start_client().
  cmd = { "quillmate", "lsp" },
  --- Buffers of these filetypes are attached automatically.
  filetypes = { "markdown", "text" },
  --- Attach automatically on FileType (false: only through :Quillmate attach).
  auto_attach = true,
  --- Sent as initializationOptions: backend, model, params, sessions.
  init_options = {},
  --- Alternatives asked for when cycling with next/prev.
  alternatives = 3,
  --- Highlight group for the ghost text.
  hl_group = "QuillmateSuggestion",
  --- Default keys (buffer-local, in prose buffers); false turns them all off,
  --- a single key set to false turns that one off.
  keymaps = {
    suggest = "<M-\\>",
    accept = "<M-a>",
    accept_word = "<M-w>",
    accept_line = "<M-l>",
    next = "<M-]>",
    prev = "<M-[>",
    dismiss = "<M-e>",
    cancel = "<M-c>",
    alternatives = "<M-o>",
    rewrite = "<Leader>qr",
  },
}

M.config = vim.deepcopy(defaults)
local ns = api.nvim_create_namespace("quillmate")
local is_setup = false
local client_id = nil
local stream_counter = 0
local streams = {} -- streamId -> function(params)
local states = {} -- bufnr -> ghost text state
local pending_edit = nil -- the rewrite or template result being previewed

local function notify(msg, level)
  vim.notify("quillmate: " .. msg, level or vim.log.levels.INFO)
end

-- Positions: Neovim counts bytes, LSP counts UTF-16 code units.
local function line_text(bufnr, row)
  return api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
end

local function to_lsp_position(bufnr, row, col)
  local line = line_text(bufnr, row)
  col = math.min(col, #line)
  local _, utf16 = vim.str_utfindex(line, col)
  return { line = row, character = utf16 }
end

local function from_lsp_position(bufnr, pos)
  local line = line_text(bufnr, pos.line)
  local ok, col = pcall(vim.str_byteindex, line, pos.character, true)
  return pos.line, ok and col or #line
end

local function uri(bufnr)
  return vim.uri_from_bufnr(bufnr)
end

--- The text from (row, col) advanced by `text`: where an insertion ends.
local function end_of(row, col, text)
  local lines = vim.split(text, "\n", { plain = true })
  if #lines == 1 then
    return row, col + #text
  end
  return row + #lines - 1, #lines[#lines]
end

-- The client ----------------------------------------------------------------

local function get_client()
  if client_id then
    local client = vim.lsp.get_client_by_id(client_id)
    if client and not client.is_stopped() then
      return client
    end
    client_id = nil
  end
  return nil
end

local function on_progress(_, params)
  local handler = params and streams[params.streamId]
  if handler then
    handler(params)
  end
end

local function client_config()
  return {
    name = "quillmate",
    cmd = M.config.cmd,
    root_dir = vim.loop.cwd(),
    init_options = M.config.init_options,
    flags = { debounce_text_changes = 50 },
    handlers = { ["quillmate/progress"] = on_progress },
    on_exit = function(code)
      if code ~= 0 then
        vim.schedule(function()
          notify("the language server stopped (exit code " .. code .. "); :Quillmate info restarts it", vim.log.levels.WARN)
        end)
      end
    end,
  }
end

local function start_client(bufnr)
  local client = get_client()
  if client then
    return client.id
  end
  local exe = M.config.cmd[1]
  if vim.fn.executable(exe) ~= 1 then
    notify("`" .. exe .. "` was not found on PATH; install quillmate or set cmd in setup()", vim.log.levels.ERROR)
    return nil
  end
  if vim.lsp.start then
    api.nvim_buf_call(bufnr, function()
      client_id = vim.lsp.start(client_config())
    end)
  else
    client_id = vim.lsp.start_client(client_config())
  end
  return client_id
end

local function set_keymaps(bufnr)
  local keys = M.config.keymaps
  if not keys then
    return
  end
  local plugs = {
    suggest = "<Plug>(quillmate-suggest)",
    accept = "<Plug>(quillmate-accept)",
    accept_word = "<Plug>(quillmate-accept-word)",
    accept_line = "<Plug>(quillmate-accept-line)",
    next = "<Plug>(quillmate-next)",
    prev = "<Plug>(quillmate-prev)",
    dismiss = "<Plug>(quillmate-dismiss)",
    cancel = "<Plug>(quillmate-cancel)",
    alternatives = "<Plug>(quillmate-alternatives)",
  }
  for name, plug in pairs(plugs) do
    local lhs = keys[name]
    if lhs then
      for _, mode in ipairs({ "n", "i" }) do
        if vim.fn.hasmapto(plug, mode) == 0 then
          vim.keymap.set(mode, lhs, plug, { buffer = bufnr, remap = true, desc = "quillmate " .. name })
        end
      end
    end
  end
  if keys.rewrite and vim.fn.hasmapto("<Plug>(quillmate-rewrite)", "x") == 0 then
    vim.keymap.set("x", keys.rewrite, "<Plug>(quillmate-rewrite)", { buffer = bufnr, remap = true })
  end
end

local function watch_buffer(bufnr)
  local group = api.nvim_create_augroup("quillmate_buf_" .. bufnr, { clear = true })
  -- Typing or leaving insert mode dismisses the suggestion, but not our own
  -- insertions (recorded by their changedtick).
  api.nvim_create_autocmd({ "TextChangedI", "TextChanged" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      local s = states[bufnr]
      if s and s.tick ~= api.nvim_buf_get_changedtick(bufnr) then
        M.dismiss(bufnr)
      end
    end,
  })
  api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.dismiss(bufnr)
    end,
  })
end

--- Attach a buffer to the quillmate server (starting it if needed).
--- @param bufnr number|nil buffer (default: current)
--- @return number|nil client id
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local id = start_client(bufnr)
  if not id then
    return nil
  end
  if not vim.lsp.buf_is_attached(bufnr, id) then
    vim.lsp.buf_attach_client(bufnr, id)
    set_keymaps(bufnr)
    watch_buffer(bufnr)
  end
  return id
end

--- Run fn(client) once the server is initialized and has the buffer open.
local function with_client(bufnr, fn)
  local id = M.attach(bufnr)
  if not id then
    return
  end
  local deadline = vim.loop.now() + 60000
  local function try()
    local client = vim.lsp.get_client_by_id(id)
    if client and client.initialized and client.attached_buffers and client.attached_buffers[bufnr] then
      fn(client)
    elseif not client or vim.loop.now() > deadline then
      notify("the language server did not start; run :checkhealth quillmate", vim.log.levels.ERROR)
    else
      vim.defer_fn(try, 20)
    end
  end
  try()
end

local function next_stream_id()
  stream_counter = stream_counter + 1
  return "nvim-" .. vim.fn.getpid() .. "-" .. stream_counter
end

local function error_text(err)
  return type(err) == "table" and (err.message or vim.inspect(err)) or tostring(err)
end

-- Ghost text ----------------------------------------------------------------

local function render(bufnr)
  api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  local s = states[bufnr]
  if not s then
    return
  end
  local text = s.items[s.index] or ""
  if text == "" then
    return
  end
  local lines = vim.split(text, "\n", { plain = true })
  local hl = M.config.hl_group
  local virt_lines = {}
  for i = 2, #lines do
    table.insert(virt_lines, { { lines[i], hl } })
  end
  local label = ""
  if #s.items > 1 then
    label = string.format("  (%d/%d)", s.index, #s.items)
  end
  local opts = {
    virt_text = { { lines[1], hl } },
    virt_text_pos = vim.fn.has("nvim-0.10") == 1 and "inline" or "eol",
    hl_mode = "combine",
  }
  if #virt_lines > 0 then
    opts.virt_lines = virt_lines
  end
  if label ~= "" then
    if #virt_lines > 0 then
      table.insert(virt_lines[#virt_lines], { label, "NonText" })
    else
      table.insert(opts.virt_text, { label, "NonText" })
    end
  end
  local row = math.min(s.row, api.nvim_buf_line_count(bufnr) - 1)
  s.extmark = api.nvim_buf_set_extmark(bufnr, ns, row, math.min(s.col, #line_text(bufnr, row)), opts)
  table.insert(s.render_log, #text)
end

local function cursor_insert_point()
  local cursor = api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local mode = api.nvim_get_mode().mode
  -- In normal mode the cursor sits on a character: continue after it, like `a`.
  if not mode:match("^i") and #line_text(0, row) > 0 then
    local line = line_text(0, row)
    col = math.min(col + #vim.fn.matchstr(line:sub(col + 1), "^."), #line)
  end
  return row, col
end

--- Ask for a continuation at the cursor, shown as ghost text that grows while
--- the model writes.
--- @param opts table|nil {n = alternatives, row = 0-based, col = byte, max_new_tokens = n}
function M.suggest(opts)
  opts = opts or {}
  local bufnr = api.nvim_get_current_buf()
  M.dismiss(bufnr)
  local row, col = opts.row, opts.col
  if row == nil then
    row, col = cursor_insert_point()
  end
  local stream_id = next_stream_id()
  local s = {
    row = row,
    col = col,
    items = {},
    index = opts.index or 1,
    stream_id = stream_id,
    pending = true,
    render_log = {},
    tick = api.nvim_buf_get_changedtick(bufnr),
  }
  states[bufnr] = s
  streams[stream_id] = function(p)
    if states[bufnr] ~= s then
      return
    end
    s.items[(p.index or 0) + 1] = p.text or ""
    for i = 1, #s.items do
      s.items[i] = s.items[i] or ""
    end
    if (p.index or 0) + 1 == s.index then
      render(bufnr)
    end
  end
  with_client(bufnr, function(client)
    if states[bufnr] ~= s then
      return
    end
    local params = {
      textDocument = { uri = uri(bufnr) },
      position = to_lsp_position(bufnr, row, col),
      context = { triggerKind = 1 },
      quillmate = { n = opts.n or 1, streamId = stream_id, maxNewTokens = opts.max_new_tokens },
    }
    local ok, request_id = client.request("textDocument/inlineCompletion", params, function(err, result)
      streams[stream_id] = nil
      if states[bufnr] ~= s then
        return
      end
      s.pending = false
      s.request_id = nil
      if err then
        if err.code == -32800 then
          s.cancelled = true
        else
          s.error = error_text(err)
        end
        if #s.items == 0 or s.items[s.index] == "" then
          M.dismiss(bufnr)
        end
        return
      end
      local items = {}
      for _, item in ipairs((result and result.items) or {}) do
        local text = type(item.insertText) == "table" and item.insertText.value or item.insertText
        table.insert(items, text or "")
      end
      if #items == 0 or (#items == 1 and items[1] == "") then
        s.items = {}
        render(bufnr)
        notify("the model had nothing to add here")
        return
      end
      s.items = items
      s.index = math.min(s.index, #items)
      s.done = true
      render(bufnr)
    end, bufnr)
    if ok then
      s.request_id = request_id
    else
      s.pending = false
      s.error = "the language server is not running"
    end
  end)
end

--- Stop the model (sends $/cancelRequest); what it wrote so far stays as ghost text.
function M.cancel(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local s = states[bufnr]
  local client = get_client()
  if s and s.pending and s.request_id and client then
    local id = s.request_id
    client.cancel_request(id)
    -- Neovim's RPC layer swallows the RequestCancelled answer without calling
    -- our handler, but it does drop the request from client.requests when the
    -- answer arrives: that is how we learn the model has stopped.
    local timer = vim.loop.new_timer()
    local deadline = vim.loop.now() + 10000
    local finished = false
    timer:start(10, 10, vim.schedule_wrap(function()
      if finished then
        return
      end
      local answered = client.requests[id] == nil
      if answered or vim.loop.now() > deadline or states[bufnr] ~= s or not s.pending then
        finished = true
        timer:stop()
        timer:close()
        if answered and states[bufnr] == s and s.pending then
          s.pending, s.request_id, s.cancelled = false, nil, true
          streams[s.stream_id] = nil
        end
      end
    end))
    return true
  end
  return false
end

--- Remove the ghost text (and stop the model if it is still writing).
function M.dismiss(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local s = states[bufnr]
  if s and s.pending then
    M.cancel(bufnr)
  end
  states[bufnr] = nil
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  end
end

--- Report accepted model text to the server, so the session records it.
local function report_accept(bufnr, text, row, col)
  local client = get_client()
  if not client or text == "" then
    return
  end
  local args = { { uri = uri(bufnr), text = text, position = to_lsp_position(bufnr, row, col) } }
  client.request("workspace/executeCommand", { command = "quillmate.accept", arguments = args }, function(err)
    if err then
      notify("could not record the accepted text: " .. error_text(err), vim.log.levels.WARN)
    end
  end, bufnr)
end

local function accept_part(part_of)
  local bufnr = api.nvim_get_current_buf()
  local s = states[bufnr]
  if not s or (s.items[s.index] or "") == "" then
    return false
  end
  if s.pending then
    M.cancel(bufnr)
    s.pending = false
    streams[s.stream_id] = nil
  end
  local text = s.items[s.index]
  local part = part_of(text)
  if part == "" then
    part = text
  end
  local row, col = s.row, math.min(s.col, #line_text(bufnr, s.row))
  api.nvim_buf_set_text(bufnr, row, col, row, col, vim.split(part, "\n", { plain = true }))
  local end_row, end_col = end_of(row, col, part)
  report_accept(bufnr, part, row, col)
  if api.nvim_get_current_buf() == bufnr then
    api.nvim_win_set_cursor(0, { end_row + 1, end_col })
  end
  local rest = text:sub(#part + 1)
  if rest == "" then
    M.dismiss(bufnr)
  else
    s.items, s.index = { rest }, 1
    s.row, s.col = end_row, end_col
    s.tick = api.nvim_buf_get_changedtick(bufnr)
    render(bufnr)
  end
  return true
end

--- Insert the whole suggestion.
function M.accept()
  return accept_part(function(text)
    return text
  end)
end

--- Insert the suggestion's next word (with the space before it).
function M.accept_word()
  return accept_part(function(text)
    return text:match("^%s*[^%s]+") or text
  end)
end

--- Insert the rest of the suggestion's current line (or the next line).
function M.accept_line()
  return accept_part(function(text)
    return text:match("^\n?[^\n]*") or text
  end)
end

local function cycle(step)
  local bufnr = api.nvim_get_current_buf()
  local s = states[bufnr]
  if not s then
    return
  end
  if #s.items < 2 and not s.pending then
    -- Only one so far: ask for several and show the next one.
    M.suggest({ n = M.config.alternatives, row = s.row, col = s.col, index = 2 })
    return
  end
  s.index = (s.index - 1 + step) % math.max(#s.items, 1) + 1
  render(bufnr)
end

--- Show the next alternative (asking for alternatives when there is only one).
function M.next()
  cycle(1)
end

--- Show the previous alternative.
function M.prev()
  cycle(-1)
end

--- The ghost text state of a buffer, for statuslines and tests.
--- @return table|nil {text, index, count, pending, done, cancelled, error, renders}
function M.suggestion(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local s = states[bufnr]
  if not s then
    return nil
  end
  return {
    text = s.items[s.index] or "",
    index = s.index,
    count = #s.items,
    pending = s.pending,
    done = s.done or false,
    cancelled = s.cancelled or false,
    error = s.error,
    renders = vim.deepcopy(s.render_log),
  }
end

M.namespace = ns

-- Previews (rewrite, template edits) ------------------------------------------

local function close_preview()
  if pending_edit and pending_edit.buf and api.nvim_buf_is_valid(pending_edit.buf) then
    api.nvim_buf_delete(pending_edit.buf, { force = true })
  end
  pending_edit = nil
end

local function preview_lines(edit)
  local header = {
    "quillmate " .. edit.title .. "    a: accept   r: reject",
    "",
  }
  if edit.new == nil then
    table.insert(header, "The model is writing…")
    if edit.streamed and edit.streamed ~= "" then
      vim.list_extend(header, vim.split(edit.streamed, "\n", { plain = true }))
    end
    return header
  end
  if edit.new == edit.old then
    table.insert(header, "(the model left the passage as it was)")
    return header
  end
  local diff = vim.diff(edit.old .. "\n", edit.new .. "\n", { result_type = "unified", ctxlen = 3 })
  if type(diff) == "string" then
    vim.list_extend(header, vim.split(diff:gsub("\n$", ""), "\n", { plain = true }))
  end
  return header
end

local function refresh_preview()
  local edit = pending_edit
  if not edit or not api.nvim_buf_is_valid(edit.buf) then
    return
  end
  api.nvim_buf_set_option(edit.buf, "modifiable", true)
  api.nvim_buf_set_lines(edit.buf, 0, -1, false, preview_lines(edit))
  api.nvim_buf_set_option(edit.buf, "modifiable", false)
end

local function open_preview(edit)
  close_preview()
  pending_edit = edit
  local source_win = api.nvim_get_current_win()
  local buf = api.nvim_create_buf(false, true)
  edit.buf = buf
  api.nvim_buf_set_option(buf, "bufhidden", "wipe")
  api.nvim_buf_set_option(buf, "filetype", "diff")
  vim.cmd("botright split")
  api.nvim_win_set_buf(0, buf)
  api.nvim_win_set_height(0, 12)
  for _, key in ipairs({ "a", "<CR>" }) do
    vim.keymap.set("n", key, M.preview_accept, { buffer = buf, desc = "quillmate: accept" })
  end
  for _, key in ipairs({ "r", "q", "<Esc>" }) do
    vim.keymap.set("n", key, M.preview_reject, { buffer = buf, desc = "quillmate: reject" })
  end
  refresh_preview()
  if api.nvim_win_is_valid(source_win) then
    api.nvim_set_current_win(source_win)
    if api.nvim_win_is_valid(vim.fn.bufwinid(buf)) then
      api.nvim_set_current_win(vim.fn.bufwinid(buf))
    end
  end
end

--- Apply the previewed rewrite and record it as the model's words.
function M.preview_accept()
  local edit = pending_edit
  if not edit or edit.new == nil then
    notify("there is no finished rewrite to accept")
    return false
  end
  if api.nvim_buf_get_changedtick(edit.bufnr) ~= edit.tick then
    close_preview()
    notify("the text changed since the rewrite was asked for; nothing was replaced — ask again", vim.log.levels.WARN)
    return false
  end
  close_preview()
  local r = edit.range
  api.nvim_buf_set_text(edit.bufnr, r[1], r[2], r[3], r[4], vim.split(edit.new, "\n", { plain = true }))
  report_accept(edit.bufnr, edit.new, r[1], r[2])
  return true
end

--- Close the preview and leave the text as it was.
function M.preview_reject()
  local edit = pending_edit
  if edit and edit.pending and edit.request_id and get_client() then
    get_client().cancel_request(edit.request_id)
  end
  close_preview()
  return edit ~= nil
end

--- The preview in progress, for tests: {new, old, pending, error} or nil.
function M.preview()
  if not pending_edit then
    return nil
  end
  return { new = pending_edit.new, old = pending_edit.old, pending = pending_edit.pending, error = pending_edit.error }
end

local function text_in_range(bufnr, r)
  return table.concat(api.nvim_buf_get_text(bufnr, r[1], r[2], r[3], r[4], {}), "\n")
end

local function lsp_range(bufnr, r)
  return { start = to_lsp_position(bufnr, r[1], r[2]), ["end"] = to_lsp_position(bufnr, r[3], r[4]) }
end

--- Byte range {srow, scol, erow, ecol} (end exclusive) for a command's range.
local function command_range(bufnr, line1, line2)
  local vs, ve = vim.fn.getpos("'<"), vim.fn.getpos("'>")
  if vim.fn.visualmode() == "v" and vs[2] == line1 and ve[2] == line2 then
    local last = line_text(bufnr, line2 - 1)
    local ecol = math.min(ve[3], #last)
    -- Include the whole last character, multibyte or not.
    if ve[3] - 1 < #last then
      ecol = ve[3] - 1 + #vim.fn.matchstr(last:sub(ve[3]), "^.")
    end
    return { line1 - 1, vs[3] - 1, line2 - 1, ecol }
  end
  return { line1 - 1, 0, line2 - 1, #line_text(bufnr, line2 - 1) }
end

local function request_edit(bufnr, method, params, title, range, on_insert, new_text)
  local stream_id = next_stream_id()
  params.streamId = stream_id
  local edit = {
    bufnr = bufnr,
    range = range,
    old = range and text_in_range(bufnr, range) or "",
    title = title,
    pending = true,
    tick = api.nvim_buf_get_changedtick(bufnr),
  }
  if range then
    open_preview(edit)
  end
  streams[stream_id] = function(p)
    if pending_edit == edit then
      edit.streamed = p.text
      refresh_preview()
    end
  end
  with_client(bufnr, function(client)
    local ok, request_id = client.request(method, params, function(err, result)
      streams[stream_id] = nil
      edit.pending = false
      if err then
        edit.error = error_text(err)
        if pending_edit == edit then
          close_preview()
        end
        return
      end
      if result.output == "insert" or not range then
        -- Nothing to preview: the text comes as ghost text to accept or dismiss.
        if pending_edit == edit then
          close_preview()
        end
        on_insert(result.text or result.newText or "", result.edit)
        return
      end
      edit.new = new_text and new_text(result) or result.newText or result.text or ""
      if pending_edit == edit then
        refresh_preview()
      end
    end, bufnr)
    edit.request_id = ok and request_id or nil
  end)
end

--- Rewrite lines (or a visual selection) as instructed, shown as a diff to accept or reject.
--- @param instruction string e.g. "vivid", "shorter", or any free instruction
--- @param range table|nil {srow, scol, erow, ecol} 0-based bytes, end exclusive
function M.rewrite(instruction, range)
  local bufnr = api.nvim_get_current_buf()
  if not instruction or instruction == "" then
    notify("say how to rewrite it, e.g. :Quillmate rewrite vivid", vim.log.levels.ERROR)
    return
  end
  range = range or command_range(bufnr, vim.fn.line("."), vim.fn.line("."))
  local params = { textDocument = { uri = uri(bufnr) }, range = lsp_range(bufnr, range), instruction = instruction }
  request_edit(bufnr, "quillmate/rewrite", params, "rewrite (" .. instruction .. ")", range, function() end)
end

--- The one insertion of a WorkspaceEdit for this buffer: row, col, text (or nil).
local function single_insert(bufnr, edit)
  local edits = edit and edit.changes and edit.changes[uri(bufnr)]
  if not edits or #edits ~= 1 then
    return nil
  end
  local e = edits[1]
  if e.range.start.line ~= e.range["end"].line or e.range.start.character ~= e.range["end"].character then
    return nil
  end
  local row, col = from_lsp_position(bufnr, e.range.start)
  return row, col, e.newText
end

--- Run a template; `insert` results become ghost text (after the selection,
--- as a new paragraph, when run on a range; else at the cursor), `edit`
--- results on a range become a preview.
function M.template(name, variables, range)
  local bufnr = api.nvim_get_current_buf()
  local params = { template = name, variables = variables or vim.empty_dict(), textDocument = { uri = uri(bufnr) } }
  if range then
    params.range = lsp_range(bufnr, range)
  end
  local row, col = cursor_insert_point()
  request_edit(bufnr, "quillmate/runTemplate", params, "template " .. name, range, function(text, edit)
    if text == "" then
      return
    end
    local erow, ecol, etext = single_insert(bufnr, edit)
    if erow then
      row, col, text = erow, ecol, etext
    end
    states[bufnr] = {
      row = row, col = col, items = { text }, index = 1, done = true, render_log = {},
      tick = api.nvim_buf_get_changedtick(bufnr),
    }
    render(bufnr)
  end)
end

-- Information -----------------------------------------------------------------

local function request(method, params, callback)
  local bufnr = api.nvim_get_current_buf()
  with_client(bufnr, function(client)
    client.request(method, params, function(err, result)
      if err then
        callback(nil, error_text(err))
      else
        callback(result)
      end
    end, bufnr)
  end)
end

--- The session's spans for the current buffer: callback({sessionId, spans}) .
function M.provenance(callback)
  local bufnr = api.nvim_get_current_buf()
  request("quillmate/provenance", { textDocument = { uri = uri(bufnr) } }, callback)
end

local function show_provenance(result, err)
  if not result then
    return
  end
  local session = result.sessionId == vim.NIL and "none (not kept: no file)" or tostring(result.sessionId)
  local lines = { "quillmate provenance — session " .. session, "" }
  for _, span in ipairs(result.spans or {}) do
    local who = span.author == "model" and "model " or "writer"
    local text_lines = vim.split(span.text or "", "\n", { plain = true })
    for i, l in ipairs(text_lines) do
      table.insert(lines, (i == 1 and ("[" .. who .. "] ") or "         ") .. l)
    end
  end
  local buf = api.nvim_create_buf(false, true)
  api.nvim_buf_set_option(buf, "bufhidden", "wipe")
  api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  api.nvim_buf_set_option(buf, "modifiable", false)
  vim.cmd("botright split")
  api.nvim_win_set_buf(0, buf)
  vim.keymap.set("n", "q", "<Cmd>close<CR>", { buffer = buf })
  vim.fn.matchadd("Comment", [[^\[model \].*]])
  local _ = err
end

--- Backend, model, context window and session of the current buffer.
function M.info(callback)
  local bufnr = api.nvim_get_current_buf()
  request("quillmate/contextInfo", { textDocument = { uri = uri(bufnr) } }, callback or function(r)
    if r then
      local context = r.loading and "loading" or (tostring(r.contextWindow) .. " tokens")
      notify(string.format("backend %s · model %s · context %s · session %s",
        tostring(r.backend), tostring(r.model), context, r.sessionId == vim.NIL and "none" or tostring(r.sessionId)))
    end
  end)
end

--- Switch the server's backend profile (and model); a failed switch keeps the old one.
--- @param callback function|nil callback(contextInfo) or callback(nil, error)
function M.switch_backend(profile, model, callback)
  local args = { profile }
  if model then
    table.insert(args, model)
  end
  -- The server says how it went (window/showMessage), success or failure.
  request("workspace/executeCommand", { command = "quillmate.switchBackend", arguments = args }, callback or function() end)
end

-- Word alternatives ---------------------------------------------------------

--- The words of a suggestion: {label, offset} with offset a character offset
--- inside the word (its first letter), as quillmate/alternatives wants.
local function words_of(text)
  local words = {}
  for at, word in text:gmatch("()(%S+)") do
    local chars = vim.str_utfindex(text, at - 1)
    table.insert(words, { word = word, offset = chars })
  end
  return words
end

local function shown_word(text)
  local word = text:gsub("\n", "\\n")
  return vim.trim(word) == word and word or ('"' .. word .. '"')
end

--- Show the new suggestion from quillmate/regenerateFrom as ghost text at (row, col), streaming.
local function regenerate_ghost(bufnr, params, row, col, lead)
  M.dismiss(bufnr)
  local stream_id = next_stream_id()
  params.streamId = stream_id
  local s = {
    row = row, col = col, items = { lead }, index = 1, stream_id = stream_id, pending = true,
    render_log = {}, tick = api.nvim_buf_get_changedtick(bufnr),
  }
  states[bufnr] = s
  render(bufnr)
  streams[stream_id] = function(p)
    if states[bufnr] == s and (p.index or 0) == 0 then
      s.items[1] = p.text or lead
      render(bufnr)
    end
  end
  with_client(bufnr, function(client)
    local ok, request_id = client.request("quillmate/regenerateFrom", params, function(err, result)
      streams[stream_id] = nil
      if states[bufnr] ~= s then
        return
      end
      s.pending, s.request_id = false, nil
      if err then
        if err.code == -32800 then
          s.cancelled = true
        else
          s.error = error_text(err)
          notify(s.error, vim.log.levels.ERROR)
        end
        return
      end
      s.items, s.done = { result.text or lead }, true
      render(bufnr)
    end, bufnr)
    s.request_id = ok and request_id or nil
  end)
end

--- Ask the server for the alternatives at `params`, let the writer choose one
--- (vim.ui.select), and write again from there.
local function choose_alternative(bufnr, params, on_choice)
  request("quillmate/alternatives", params, function(reply, err)
    if not reply then
      notify(err, vim.log.levels.ERROR)
      return
    end
    local options = reply.alternatives or {}
    if #options == 0 then
      notify("the model weighed no other words here")
      return
    end
    vim.ui.select(options, {
      prompt = "quillmate: instead of " .. shown_word(reply.word) .. ":",
      format_item = function(o)
        local mark = o.text == reply.word and "  (written)" or ""
        return string.format("%5.1f%%  %s%s", (o.probability or 0) * 100, shown_word(o.text), mark)
      end,
    }, function(choice)
      if choice then
        on_choice(reply, choice.text)
      end
    end)
  end)
end

--- Show the words the model almost wrote at a word, and write again from the one chosen.
--- With ghost text shown the word is one of the suggestion's (`opts.word`, its
--- number, or chosen from a list); without, the word under the cursor in model
--- text accepted in this document. The new suggestion streams in as ghost text
--- (for accepted text, as a preview that replaces it from the word on).
--- @param opts table|nil {word = n}
function M.alternatives(opts)
  opts = opts or {}
  local bufnr = api.nvim_get_current_buf()
  local s = states[bufnr]
  local text = s and s.items[s.index] or ""
  if text ~= "" then
    local row, col = s.row, math.min(s.col, #line_text(bufnr, s.row))
    local base = { textDocument = { uri = uri(bufnr) }, position = to_lsp_position(bufnr, row, col), text = text }
    local function at_word(w)
      local params = vim.tbl_extend("force", base, { offset = w.offset })
      choose_alternative(bufnr, params, function(reply, choice)
        local lead = text:sub(1, vim.str_byteindex(text, reply.start)) .. choice
        regenerate_ghost(bufnr, vim.tbl_extend("force", params, { choice = choice }), row, col, lead)
      end)
    end
    local words = words_of(text)
    if opts.word then
      if not words[opts.word] then
        notify("the suggestion has " .. #words .. " words; there is no word " .. opts.word, vim.log.levels.ERROR)
        return
      end
      at_word(words[opts.word])
      return
    end
    vim.ui.select(words, {
      prompt = "quillmate: which word?",
      format_item = function(w)
        return w.word
      end,
    }, function(w)
      if w then
        at_word(w)
      end
    end)
    return
  end
  local cursor = api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local params = { textDocument = { uri = uri(bufnr) }, position = to_lsp_position(bufnr, row, col) }
  choose_alternative(bufnr, params, function(reply, choice)
    local srow, scol = from_lsp_position(bufnr, reply.range.start)
    local old = reply.text:sub(vim.str_byteindex(reply.text, reply.start) + 1)
    local erow, ecol = end_of(srow, scol, old)
    local range = { srow, scol, erow, ecol }
    local shown = "words from " .. shown_word(reply.word) .. " with " .. shown_word(choice)
    request_edit(bufnr, "quillmate/regenerateFrom", vim.tbl_extend("force", params, { choice = choice }), shown,
      range, function() end, function(result)
        return result.text:sub(vim.str_byteindex(result.text, result.start) + 1)
      end)
  end)
end

-- :Quillmate ----------------------------------------------------------------

local subcommands = { "continue", "alternatives", "rewrite", "template", "backend", "provenance", "info", "attach", "stop" }
local presets = { "vivid", "shorter", "longer", "simpler", "past-tense", "present-tense", "first-person", "third-person" }

function M.command(args)
  local sub = args.fargs[1]
  local rest = vim.list_slice(args.fargs, 2)
  local bufnr = api.nvim_get_current_buf()
  local range = args.range > 0 and command_range(bufnr, args.line1, args.line2) or nil
  if sub == nil or sub == "continue" then
    M.suggest()
  elseif sub == "alternatives" then
    local word = rest[1] and tonumber(rest[1])
    if rest[1] and not word then
      notify("give the word's number in the suggestion, e.g. :Quillmate alternatives 3", vim.log.levels.ERROR)
      return
    end
    M.alternatives({ word = word })
  elseif sub == "rewrite" then
    M.rewrite(table.concat(rest, " "), range)
  elseif sub == "template" then
    if not rest[1] then
      notify("name a template, e.g. :Quillmate template poem topic=sea", vim.log.levels.ERROR)
      return
    end
    local variables = vim.empty_dict()
    for i = 2, #rest do
      local key, value = rest[i]:match("^([%w_-]+)=(.*)$")
      if not key then
        notify("template variables look like name=value, not " .. rest[i], vim.log.levels.ERROR)
        return
      end
      variables[key] = value
    end
    M.template(rest[1], variables, range)
  elseif sub == "backend" then
    if not rest[1] then
      notify("name a backend profile, e.g. :Quillmate backend local", vim.log.levels.ERROR)
      return
    end
    M.switch_backend(rest[1], rest[2])
  elseif sub == "provenance" then
    M.provenance(show_provenance)
  elseif sub == "info" then
    M.info()
  elseif sub == "attach" then
    M.attach(bufnr)
  elseif sub == "stop" then
    M.stop()
  else
    notify("unknown subcommand " .. sub .. "; try one of: " .. table.concat(subcommands, ", "), vim.log.levels.ERROR)
  end
end

function M.complete(arglead, cmdline)
  local words = vim.split(cmdline, "%s+")
  local pool
  if #words <= 2 then
    pool = subcommands
  elseif words[2] == "rewrite" and #words == 3 then
    pool = presets
  elseif words[2] == "template" and #words == 3 then
    pool = {}
    local client = get_client()
    if client then
      local res = client.request_sync("quillmate/templates", vim.empty_dict(), 2000, 0)
      for _, t in ipairs((res and res.result) or {}) do
        table.insert(pool, t.name)
      end
    end
  else
    return {}
  end
  return vim.tbl_filter(function(w)
    return vim.startswith(w, arglead)
  end, pool)
end

--- Stop the server.
function M.stop()
  local client = get_client()
  for bufnr in pairs(states) do
    M.dismiss(bufnr)
  end
  if client then
    client.stop()
  end
  client_id = nil
end

--- The running client's id, if any.
function M.client_id()
  return get_client() and client_id or nil
end

function M.is_setup()
  return is_setup
end

--- Configure quillmate. Every key is optional; see :help quillmate-setup.
function M.setup(opts)
  opts = opts or {}
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts)
  if opts.keymaps == false then
    M.config.keymaps = false
  end
  is_setup = true
  vim.cmd("highlight default link QuillmateSuggestion Comment")
  local group = api.nvim_create_augroup("quillmate", { clear = true })
  if M.config.auto_attach then
    api.nvim_create_autocmd("FileType", {
      group = group,
      pattern = M.config.filetypes,
      callback = function(ev)
        M.attach(ev.buf)
      end,
    })
  end
  api.nvim_create_autocmd("VimLeavePre", { group = group, callback = M.stop })
end

return M
