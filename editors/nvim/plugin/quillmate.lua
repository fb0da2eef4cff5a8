-- quillmate for Neovim: commands and <Plug> mappings. Nothing starts until a
-- prose buffer opens (or :Quillmate is used); call require("quillmate").setup()
-- to change the defaults.
if vim.g.loaded_quillmate then
  return
end
vim.g.loaded_quillmate = true

if vim.fn.has("nvim-0.7") ~= 1 then
  vim.api.nvim_echo({ { "quillmate needs Neovim 0.7 or newer.", "WarningMsg" } }, true, {})
  return
end

local function qm()
  return require("quillmate")
end

local plugs = {
  { "n", "<Plug>(quillmate-suggest)", function() qm().suggest() end },
  { "i", "<Plug>(quillmate-suggest)", function() qm().suggest() end },
  { "n", "<Plug>(quillmate-accept)", function() qm().accept() end },
  { "i", "<Plug>(quillmate-accept)", function() qm().accept() end },
  { "n", "<Plug>(quillmate-accept-word)", function() qm().accept_word() end },
  { "i", "<Plug>(quillmate-accept-word)", function() qm().accept_word() end },
  { "n", "<Plug>(quillmate-accept-line)", function() qm().accept_line() end },
  { "i", "<Plug>(quillmate-accept-line)", function() qm().accept_line() end },
  { "n", "<Plug>(quillmate-next)", function() qm().next() end },
  { "i", "<Plug>(quillmate-next)", function() qm().next() end },
  { "n", "<Plug>(quillmate-prev)", function() qm().prev() end },
  { "i", "<Plug>(quillmate-prev)", function() qm().prev() end },
  { "n", "<Plug>(quillmate-dismiss)", function() qm().dismiss() end },
  { "i", "<Plug>(quillmate-dismiss)", function() qm().dismiss() end },
  { "n", "<Plug>(quillmate-cancel)", function() qm().cancel() end },
  { "i", "<Plug>(quillmate-cancel)", function() qm().cancel() end },
  { "n", "<Plug>(quillmate-alternatives)", function() qm().alternatives() end },
  { "i", "<Plug>(quillmate-alternatives)", function() qm().alternatives() end },
}
for _, p in ipairs(plugs) do
  vim.keymap.set(p[1], p[2], p[3], { silent = true })
end
vim.keymap.set("x", "<Plug>(quillmate-rewrite)", ":Quillmate rewrite ", {})

vim.api.nvim_create_user_command("Quillmate", function(args)
  qm().command(args)
end, {
  nargs = "*",
  range = true,
  complete = function(arglead, cmdline)
    return qm().complete(arglead, cmdline)
  end,
  desc = "quillmate: continue, alternatives, rewrite, template, backend, provenance, info",
})

vim.api.nvim_create_autocmd("VimEnter", {
  once = true,
  callback = function()
    -- setup() may already have run from the user's config; otherwise use the defaults.
    if not qm().is_setup() then
      qm().setup({})
    end
  end,
})
if vim.v.vim_did_enter == 1 and not qm().is_setup() then
  qm().setup({})
end
