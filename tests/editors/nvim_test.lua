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

local function ghost_marks()
  return vim.api.nvim_buf_get_extmarks(0, require("quillmate").namespace, 0, -1, { details = true })
end

local function wait_for_suggestion(what)
  local qm = require("quillmate")
  wait_for(what, function()
    local s = qm.suggestion()
    return s and not s.pending and (s.done or s.error or s.cancelled)
  end)
  local s = qm.suggestion()
  check(not s.error, what .. " failed: " .. tostring(s.error))
  return s
end

-- Messages the server shows (window/showMessage), in order.
local shown = {}
local show_message = vim.lsp.handlers["window/showMessage"]
vim.lsp.handlers["window/showMessage"] = function(err, res, ctx, config)
  table.insert(shown, res.message)
  return show_message(err, res, ctx, config)
end

-- What the plugin itself says (vim.notify).
local notes = {}
vim.notify = function(msg)
  table.insert(notes, msg)
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

-- The cursor on the last character of the buffer (column 0 when the last line is empty).
local function cursor_on_last_character()
  vim.api.nvim_win_set_cursor(0, { vim.api.nvim_buf_line_count(0), math.max(0, #vim.fn.getline("$") - 1) })
end

local function run()
  vim.opt.runtimepath:prepend(vim.env.QM_PLUGIN)
  vim.cmd("filetype on")
  vim.cmd("runtime plugin/quillmate.lua")
  local qm = require("quillmate")
  qm.setup({
    cmd = vim.fn.json_decode(vim.env.QM_CMD),
    init_options = { params = { max_new_tokens = 12, temperature = 0, seed = 7 } },
    alternatives = 2,
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
  cursor_on_last_character()
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

  -- Alternatives: from one suggestion, next asks for two and shows the second;
  -- prev and next cycle through them, wrapping around.
  cursor_on_last_character()
  local before_alternatives = buffer_text()
  -- Sampled (seeded), so the two alternatives differ.
  local client = vim.lsp.get_client_by_id(qm.client_id())
  local function set_params(params)
    client.notify("workspace/didChangeConfiguration", { settings = { quillmate = { params = params } } })
  end
  set_params({ max_new_tokens = 12, temperature = 0.9, seed = 7 })
  qm.suggest()
  check(wait_for_suggestion("the first suggestion").count == 1, "one suggestion was asked for")
  vim.cmd([[execute "normal \<Plug>(quillmate-next)"]])
  local alt = wait_for_suggestion("the alternatives")
  check(alt.count == 2 and alt.index == 2, "next did not show the second of two: " .. vim.inspect(alt))
  local texts = {}
  for i, step_key in ipairs({ "prev", "prev", "next" }) do
    local shown_before = qm.suggestion().index
    vim.cmd("execute \"normal \\<Plug>(quillmate-" .. step_key .. ")\"")
    local cur = qm.suggestion()
    local expected = shown_before % 2 + 1 -- with two, either way is the other one
    check(cur.index == expected, step_key .. " " .. i .. " showed " .. cur.index .. ", not " .. expected)
    local marks = ghost_marks()
    check(#marks == 1, "expected one extmark while cycling, found " .. #marks)
    local virt = marks[1][4].virt_lines or { marks[1][4].virt_text }
    local label = virt[#virt][#virt[#virt]][1]
    check(label == string.format("  (%d/2)", cur.index), "the ghost text is not labelled " .. cur.index .. "/2: " .. label)
    check(marks[1][4].virt_text[1][1] == vim.split(cur.text, "\n", { plain = true })[1], "the shown text is not alternative " .. cur.index)
    texts[cur.index] = cur.text
  end
  result.alternatives = texts
  check(texts[1] ~= texts[2], "the two alternatives are the same: " .. texts[1])
  set_params({ max_new_tokens = 12, temperature = 0, seed = 7 })
  vim.cmd([[execute "normal \<Plug>(quillmate-accept)"]])
  check(buffer_text() == before_alternatives .. texts[1], "accepting the alternative shown gave: " .. buffer_text())
  step("alternatives")

  -- Word alternatives: at the second word of the ghost text, the words the model
  -- weighed there with their probabilities; choosing the second one writes again
  -- from that word (streaming), keeping the words before it.
  cursor_on_last_character()
  local before_words = buffer_text()
  qm.suggest()
  local ghost = wait_for_suggestion("the suggestion to choose a word in").text
  local prefix = ghost:match("^%s*%S+")
  check(prefix and ghost:sub(#prefix + 1):match("%S"), "the suggestion has fewer than two words: " .. ghost)
  local offered, chosen
  local real_select = vim.ui.select
  vim.ui.select = function(items, opts, on_choice)
    offered = {}
    for i, item in ipairs(items) do
      offered[i] = opts.format_item(item)
    end
    chosen = items[2]
    on_choice(items[2], 2)
  end
  vim.cmd("Quillmate alternatives 2")
  wait_for("the alternatives", function()
    return offered ~= nil
  end)
  vim.ui.select = real_select
  result.word_alternatives = offered
  check(#offered >= 3, "fewer than three alternatives: " .. vim.inspect(offered))
  for _, line in ipairs(offered) do
    check(line:match("^%s*%d+%.%d%%  "), "an alternative without its probability: " .. line)
  end
  check(offered[1]:find("(written)", 1, true), "the written word is not the likeliest at temperature 0: " .. vim.inspect(offered))
  local again = wait_for_suggestion("the suggestion written again")
  result.regenerated = again.text
  -- Drawn once with the kept words and the choice, once at the end: more means it streamed.
  check(#again.renders >= 4, "the new suggestion was drawn only " .. #again.renders .. " time(s): no streaming")
  check(again.text:sub(1, #prefix) == prefix, "the words before the chosen one changed: " .. again.text)
  local space = ghost:sub(#prefix + 1):match("^%s*")
  local at = again.text:sub(#prefix + 1)
  check(vim.startswith(at, chosen.text) or vim.startswith(at, space .. chosen.text),
    "the chosen word " .. vim.inspect(chosen.text) .. " does not follow the kept words: " .. again.text)
  check(again.text ~= ghost, "the suggestion did not change: " .. ghost)
  check(ghost_marks()[1][4].virt_text[1][1] == vim.split(again.text, "\n", { plain = true })[1],
    "the ghost text does not show the new suggestion")
  check(buffer_text() == before_words, "choosing a word changed the buffer")
  vim.cmd([[execute "normal \<Plug>(quillmate-accept)"]])
  check(buffer_text() == before_words .. again.text, "accepting the new suggestion gave: " .. buffer_text())

  -- The same word, now accepted text: the cursor on it, choose another; the new
  -- words replace the old from there, through the preview.
  local upto = vim.split(before_words .. again.text:sub(1, #prefix + #space), "\n", { plain = true })
  vim.api.nvim_win_set_cursor(0, { #upto, #upto[#upto] })
  offered = nil
  vim.ui.select = function(items, opts, on_choice)
    offered = {}
    for i, item in ipairs(items) do
      offered[i] = opts.format_item(item)
    end
    chosen = items[1]
    on_choice(items[1], 1)
  end
  vim.cmd("Quillmate alternatives")
  wait_for("the alternatives at the cursor", function()
    return offered ~= nil
  end)
  vim.ui.select = real_select
  check(#offered >= 3 and offered[1]:match("^%s*%d+%.%d%%  "), "no alternatives at the cursor: " .. vim.inspect(offered))
  wait_for("the preview", function()
    local p = qm.preview()
    return p and (p.new ~= nil or p.error)
  end)
  local redo = qm.preview()
  check(not redo.error, "writing again from accepted text failed: " .. tostring(redo.error))
  local kept = again.text:sub(1, #prefix + #space - #(chosen.text:match("^%s*")))
  check(redo.old == again.text:sub(#kept + 1), "the preview does not replace from the word on: " .. redo.old)
  check(vim.startswith(redo.new, chosen.text), "the preview does not start with the chosen word: " .. redo.new)
  check(qm.preview_accept(), "accepting the new words failed")
  check(buffer_text() == before_words .. kept .. redo.new,
    "the new words did not replace the old from the word on: " .. buffer_text())
  step("word alternatives")

  -- A template on a selection: the poem comes as ghost text after it, as a new
  -- paragraph; accepting line by line inserts it.
  local before_template = buffer_text()
  vim.cmd("3Quillmate template poem")
  wait_for("the poem", function()
    local s = qm.suggestion()
    return (s and s.done) or (qm.preview() and qm.preview().error)
  end)
  check(qm.preview() == nil, "the preview stayed open for a template that inserts")
  local poem = qm.suggestion()
  check(poem and poem.text:sub(1, 2) == "\n\n" and poem.text:match("%S"), "the poem is not a new paragraph: " .. vim.inspect(poem))
  local mark = ghost_marks()[1]
  check(mark[2] == 2 and mark[3] == #vim.fn.getline(3), "the poem is not shown after the selection: " .. vim.inspect(mark))
  result.poem = poem.text
  -- The first line of the ghost text is empty (the paragraph break), then the poem's lines.
  local inserted = ""
  for _ = 1, 2 do
    local rest = qm.suggestion().text
    local line = rest:match("^\n?[^\n]*")
    vim.cmd([[execute "normal \<Plug>(quillmate-accept-line)"]])
    inserted = inserted .. line
    check(qm.suggestion() == nil or qm.suggestion().text == rest:sub(#line + 1), "the ghost text did not lose its first line")
  end
  local lines_before = vim.split(before_template, "\n", { plain = true })
  local expected_lines = vim.list_extend(vim.list_slice(lines_before, 1, 3), vim.list_slice(vim.split(inserted, "\n", { plain = true }), 2))
  vim.list_extend(expected_lines, vim.list_slice(lines_before, 4))
  check(buffer_text() == table.concat(expected_lines, "\n"), "accepting two lines of the poem gave: " .. buffer_text())
  check(vim.trim(inserted) ~= "", "accept-line inserted no words of the poem")
  vim.cmd([[execute "normal \<Plug>(quillmate-dismiss)"]])
  local by_model_now = model_text(provenance())
  check(by_model_now:find(vim.trim(inserted), 1, true), "the session does not credit the model with the poem's line: " .. inserted)
  step("template, accept line")

  -- :Quillmate info and the provenance window.
  vim.cmd("Quillmate info")
  wait_for("the info message", function()
    return notes[#notes] and notes[#notes]:find("^quillmate: backend ") ~= nil
  end)
  result.info = notes[#notes]
  check(notes[#notes]:find("backend local · model ", 1, true) and notes[#notes]:find(" tokens · session ", 1, true),
    "the info is not backend, model, context and session: " .. notes[#notes])
  local windows = #vim.api.nvim_list_wins()
  vim.cmd("Quillmate provenance")
  wait_for("the provenance window", function()
    return #vim.api.nvim_list_wins() > windows
  end)
  local shown_lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  check(shown_lines[1]:find("^quillmate provenance — session %x"), "the provenance window has no session: " .. shown_lines[1])
  local joined = table.concat(shown_lines, "\n")
  check(joined:find("\n[model ] " .. word, 1, true), "the provenance window does not show the model's words: " .. joined)
  check(joined:find("[writer] # The lighthouse", 1, true), "the provenance window does not show the writer's words: " .. joined)
  vim.cmd("normal q")
  check(#vim.api.nvim_list_wins() == windows, "q did not close the provenance window")
  step("info, provenance window")

  -- Switching backend: a profile works; an unknown one is one line and keeps the old one.
  local switched
  qm.switch_backend("local", nil, function(r, err)
    switched = r or err or false
  end)
  wait_for("the switch to local", function()
    return switched ~= nil
  end)
  check(type(switched) == "table" and switched.backend == "local", "switching to local failed: " .. vim.inspect(switched))
  check(shown[#shown]:find("now writing with local", 1, true), "the switch was not announced: " .. vim.inspect(shown))
  local count = #shown
  vim.cmd("Quillmate backend no-such-profile")
  wait_for("the failed switch", function()
    return #shown > count
  end)
  local failure = shown[#shown]
  result.switch_error = failure
  check(failure:find("no-such-profile", 1, true) and not failure:find("\n") and not failure:find("Traceback"),
    "the failed switch is not one line naming the profile: " .. failure)
  local info
  qm.info(function(r)
    info = r or false
  end)
  wait_for("the info", function()
    return info ~= nil
  end)
  check(info and info.backend == "local" and not info.loading, "the old backend was not kept: " .. vim.inspect(info))
  step("switch backend")

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
  cursor_on_last_character()
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
