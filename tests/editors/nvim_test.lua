-- Drives editors/nvim against the real `quillmate lsp`, headless.
-- Run by tests/editors/test_nvim.py with QM_PLUGIN, QM_CMD (JSON list),
-- QM_FILE and QM_RESULT set; writes {"ok": true, ...} or {"ok": false, "error": ...}.
local result = { ok = false, steps = {} }

local function finish()
  vim.fn.writefile({ vim.fn.json_encode(result) }, vim.env.QM_RESULT)
  vim.cmd("qall!")
end

local function step(name)
  table.insert(result.steps, name)
end

local function wait_for(what, cond, timeout)
  if not vim.wait(timeout or 60000, cond, 20) then
    error("timed out waiting for " .. what)
  end
end

local function check(cond, msg)
  if not cond then
    error(msg, 2)
  end
end

local function buffer_text()
  return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
end

local function provenance()
  local got, failure
  require("quillmate").provenance(function(r, err)
    got, failure = r or false, err
  end)
  wait_for("provenance", function()
    return got ~= nil
  end)
  check(got, "provenance failed: " .. tostring(failure))
  return got
end

local function model_text(prov)
  local parts = {}
  for _, span in ipairs(prov.spans or {}) do
    if span.author == "model" then
      table.insert(parts, span.text)
    end
  end
  return table.concat(parts)
end

local function run()
  vim.opt.runtimepath:prepend(vim.env.QM_PLUGIN)
  vim.cmd("filetype on")
  vim.cmd("runtime plugin/quillmate.lua")
  local qm = require("quillmate")
  qm.setup({
    cmd = vim.fn.json_decode(vim.env.QM_CMD),
    init_options = { params = { max_new_tokens = 12, temperature = 0, seed = 7 } },
  })
  vim.cmd("edit " .. vim.fn.fnameescape(vim.env.QM_FILE))
  check(vim.bo.filetype == "markdown", "the buffer is not markdown: " .. vim.bo.filetype)
  wait_for("the server to start", function()
    local id = qm.client_id()
    local client = id and vim.lsp.get_client_by_id(id)
    return client and client.initialized and client.attached_buffers[vim.api.nvim_get_current_buf()]
  end)
  step("attached")
  local original = buffer_text()

  -- Ghost text through the <Plug> mapping, after the last character.
  vim.api.nvim_win_set_cursor(0, { vim.api.nvim_buf_line_count(0), #vim.fn.getline("$") - 1 })
  vim.cmd([[execute "normal \<Plug>(quillmate-suggest)"]])
  wait_for("the suggestion", function()
    local s = qm.suggestion()
    return s and (s.done or s.error)
  end)
  local s = qm.suggestion()
  check(not s.error, "the suggestion failed: " .. tostring(s.error))
  local suggestion = s.text
  check(suggestion:match("%S"), "the suggestion is empty")
  result.suggestion = suggestion
  result.renders = s.renders
  check(#s.renders >= 2, "the ghost text was drawn only " .. #s.renders .. " time(s): no streaming")
  for i = 2, #s.renders do
    check(s.renders[i] >= s.renders[i - 1], "the ghost text shrank while streaming")
  end
  check(s.renders[#s.renders] > s.renders[1], "the ghost text did not grow while streaming")
  local marks = vim.api.nvim_buf_get_extmarks(0, qm.namespace, 0, -1, { details = true })
  check(#marks == 1, "expected one extmark, found " .. #marks)
  local details = marks[1][4]
  local lines = vim.split(suggestion, "\n", { plain = true })
  check(details.virt_text[1][1] == lines[1], "virt_text is not the first line of the suggestion")
  check(#lines == 1 or (details.virt_lines and #details.virt_lines == #lines - 1), "virt_lines do not hold the rest")
  step("ghost text")

  -- Accept one word, then the rest.
  local word = suggestion:match("^%s*[^%s]+")
  vim.cmd([[execute "normal \<Plug>(quillmate-accept-word)"]])
  check(buffer_text() == original .. word, "accepting a word gave: " .. buffer_text())
  check(qm.suggestion().text == suggestion:sub(#word + 1), "the ghost text did not shrink by the word")
  vim.cmd([[execute "normal \<Plug>(quillmate-accept)"]])
  check(buffer_text() == original .. suggestion, "accepting all gave: " .. buffer_text())
  check(qm.suggestion() == nil, "the ghost text stayed after accepting all")
  check(#vim.api.nvim_buf_get_extmarks(0, qm.namespace, 0, -1, {}) == 0, "extmarks left after accepting")
  step("accept")

  local prov = provenance()
  local by_model = model_text(prov)
  result.provenance = prov
  check(by_model:find(vim.trim(suggestion), 1, true), "the session does not credit the model with: " .. suggestion)
  step("provenance")

  -- Rewrite the first line: reject leaves it, accept replaces it.
  local before = buffer_text()
  vim.cmd("1Quillmate rewrite shorter")
  wait_for("the rewrite", function()
    local p = qm.preview()
    return p and (p.new ~= nil or p.error)
  end)
  check(not qm.preview().error, "rewrite failed: " .. tostring(qm.preview().error))
  check(qm.preview_reject(), "no preview to reject")
  check(buffer_text() == before, "rejecting a rewrite changed the text")
  check(qm.preview() == nil, "the preview stayed open after rejecting")
  step("rewrite reject")

  vim.cmd("1Quillmate rewrite vivid")
  wait_for("the rewrite", function()
    local p = qm.preview()
    return p and (p.new ~= nil or p.error)
  end)
  local new = qm.preview().new
  check(qm.preview_accept(), "accepting the rewrite failed")
  local expected = vim.split(before, "\n", { plain = true })
  local new_lines = vim.split(new, "\n", { plain = true })
  check(
    buffer_text() == table.concat(vim.list_extend(vim.deepcopy(new_lines), vim.list_slice(expected, 2)), "\n"),
    "the accepted rewrite is not in the buffer: " .. buffer_text()
  )
  result.rewrite = new
  step("rewrite accept")

  -- Cancel a long continuation while it streams.
  local before_cancel = buffer_text()
  vim.api.nvim_win_set_cursor(0, { vim.api.nvim_buf_line_count(0), #vim.fn.getline("$") - 1 })
  qm.suggest({ max_new_tokens = 400 })
  wait_for("streaming to begin", function()
    local cur = qm.suggestion()
    return cur and (#cur.renders > 0 or not cur.pending)
  end)
  check(qm.suggestion().pending, "the long continuation finished before it could be cancelled")
  local t0 = vim.loop.hrtime()
  vim.cmd([[execute "normal \<Plug>(quillmate-cancel)"]])
  wait_for("the cancelled request to end", function()
    return not qm.suggestion().pending
  end, 10000)
  result.cancel_ms = (vim.loop.hrtime() - t0) / 1e6
  local after = qm.suggestion()
  check(after.cancelled, "the request was not answered as cancelled (error: " .. tostring(after.error) .. ")")
  check(buffer_text() == before_cancel, "cancelling changed the text")
  vim.cmd([[execute "normal \<Plug>(quillmate-dismiss)"]])
  check(qm.suggestion() == nil, "dismiss left the suggestion")
  step("cancel")

  result.ok = true
end

local ok, err = xpcall(run, debug.traceback)
if not ok then
  result.error = tostring(err)
end
pcall(function()
  require("quillmate").stop()
end)
finish()
