_celerytool_completion() {
    local IFS=$'\n'
    local response

    # COMP_LINE: the line as typed, up to the cursor (COMP_WORDS is split at ':' and '=').
    response=$(env COMP_LINE="${COMP_LINE:0:COMP_POINT}" COMP_CUR="${COMP_WORDS[COMP_CWORD]}" \
        COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD _CELERYTOOL_COMPLETE=bash_complete $1)

    for completion in $response; do
        IFS=',' read type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=($value)
        fi
    done

    return 0
}

_celerytool_completion_setup() {
    complete -o nosort -F _celerytool_completion celerytool
}

_celerytool_completion_setup;
