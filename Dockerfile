# placeholder: the static build and image arrive with issue 5
FROM scratch
