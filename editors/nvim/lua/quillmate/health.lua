--- :checkhealth quillmate — the executable, the Neovim version, the server starting.
local M = {}

local health = vim.health or require("health")
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local error = health.error or health.report_error
local info = health.info or health.report_info

function M.check()
  start("quillmate")
  if vim.fn.has("nvim-0.7") == 1 then
    ok("Neovim " .. tostring(vim.version().major) .. "." .. vim.version().minor .. "." .. vim.version().patch)
  else
    error("quillmate needs Neovim 0.7 or newer", { "Upgrade Neovim, or use the Vim plugin in editors/vim" })
    return
  end

  local config = require("quillmate").config
  local exe = config.cmd[1]
  if vim.fn.executable(exe) ~= 1 then
    error("`" .. exe .. "` is not on PATH", {
      "Install quillmate (pip install -e . in its folder) and activate its environment",
      'or point setup({cmd = {"/path/to/quillmate", "lsp"}}) at it',
    })
    return
  end
  ok("`" .. exe .. "` found: " .. vim.fn.exepath(exe))

  -- Start a private server and wait for it to answer initialize.
  local answered, failure = false, nil
  local id = vim.lsp.start_client({
    name = "quillmate-health",
    cmd = config.cmd,
    root_dir = vim.loop.cwd(),
    init_options = config.init_options,
    on_init = function()
      answered = true
    end,
    on_exit = function(code)
      if not answered then
        failure = "it exited with code " .. tostring(code)
      end
    end,
  })
  if not id then
    error("the language server could not be started with: " .. table.concat(config.cmd, " "))
    return
  end
  vim.wait(30000, function()
    return answered or failure ~= nil
  end, 50)
  local client = vim.lsp.get_client_by_id(id)
  if answered then
    ok("the language server started and answered: " .. table.concat(config.cmd, " "))
    local caps = client and client.server_capabilities or {}
    if caps.inlineCompletionProvider then
      ok("it offers ghost-text continuations")
    else
      warn("it does not offer inline completion; is quillmate up to date?")
    end
  else
    error("the language server did not answer: " .. (failure or "no reply in 30 s"), {
      "Run `" .. table.concat(config.cmd, " ") .. " --debug` in a terminal to see why",
    })
  end
  if client then
    client.stop()
  end
  info("Filetypes attached automatically: " .. table.concat(config.filetypes, ", "))
end

return M
