" quillmate for Vim 9.0: commands and <Plug> mappings (see :help quillmate).
if exists('g:loaded_quillmate')
  finish
endif
let g:loaded_quillmate = 1

if v:version < 900 || !has('textprop') || !has('job') || !has('patch-9.0.0067')
  echohl WarningMsg
  echomsg 'quillmate needs Vim 9.0.0067 or newer with +job and +textprop (virtual text)'
  echohl None
  finish
endif

nnoremap <silent> <Plug>(quillmate-suggest) <Cmd>call quillmate#suggest()<CR>
inoremap <silent> <Plug>(quillmate-suggest) <Cmd>call quillmate#suggest()<CR>
nnoremap <silent> <Plug>(quillmate-accept) <Cmd>call quillmate#accept()<CR>
inoremap <silent> <Plug>(quillmate-accept) <Cmd>call quillmate#accept()<CR>
nnoremap <silent> <Plug>(quillmate-accept-word) <Cmd>call quillmate#accept_word()<CR>
inoremap <silent> <Plug>(quillmate-accept-word) <Cmd>call quillmate#accept_word()<CR>
nnoremap <silent> <Plug>(quillmate-accept-line) <Cmd>call quillmate#accept_line()<CR>
inoremap <silent> <Plug>(quillmate-accept-line) <Cmd>call quillmate#accept_line()<CR>
nnoremap <silent> <Plug>(quillmate-next) <Cmd>call quillmate#next()<CR>
inoremap <silent> <Plug>(quillmate-next) <Cmd>call quillmate#next()<CR>
nnoremap <silent> <Plug>(quillmate-prev) <Cmd>call quillmate#prev()<CR>
inoremap <silent> <Plug>(quillmate-prev) <Cmd>call quillmate#prev()<CR>
nnoremap <silent> <Plug>(quillmate-dismiss) <Cmd>call quillmate#dismiss()<CR>
inoremap <silent> <Plug>(quillmate-dismiss) <Cmd>call quillmate#dismiss()<CR>
nnoremap <silent> <Plug>(quillmate-cancel) <Cmd>call quillmate#cancel()<CR>
inoremap <silent> <Plug>(quillmate-cancel) <Cmd>call quillmate#cancel()<CR>
nnoremap <silent> <Plug>(quillmate-alternatives) <Cmd>call quillmate#alternatives()<CR>
inoremap <silent> <Plug>(quillmate-alternatives) <Cmd>call quillmate#alternatives()<CR>
xnoremap <Plug>(quillmate-rewrite) :Quillmate rewrite<Space>

command! -range=0 -nargs=* -complete=customlist,quillmate#complete Quillmate
      \ call quillmate#command(<range>, <line1>, <line2>, <q-args>)
command! -nargs=? QuillmateAlternatives call quillmate#command(0, 0, 0, 'alternatives ' . <q-args>)

augroup quillmate
  autocmd!
  autocmd FileType * if index(get(g:, 'quillmate_filetypes', ['markdown', 'text']), &filetype) >= 0
        \ && get(g:, 'quillmate_auto_attach', 1) | call quillmate#attach() | endif
  autocmd VimLeavePre * if quillmate#running() | call quillmate#stop() | endif
augroup END
